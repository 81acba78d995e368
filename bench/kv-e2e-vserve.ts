// vserve's side of the end-to-end decode run: the Engine as users load it, with the KV type under test
// and the prefill-first scheduler, so that every prompt is computed before the first decode step and
// all sequences then decode together in every step (once no prompt waits, its steps are Sarathi's).
import { Engine, GGUFFile, readModelConfig } from '../src/index.js';
import { bytesPerToken, resolveShape } from '../src/kv/shape.js';
import { contextFor, type DecodeRunSpec, type DecodeRunTimes } from './kv-e2e-run.js';

/** Runs `spec` on a freshly loaded engine; `eos` (when the model has one) is kept from being sampled. */
export async function vserveDecodeRun(modelPath: string, spec: DecodeRunSpec, eos: number | undefined): Promise<DecodeRunTimes> {
  const maxSeqs = spec.prompts.length, maxContext = contextFor(spec);
  const engine = await Engine.load(modelPath, {
    threads: spec.threads,
    kvType: spec.type,
    scheduler: 'vllm',
    maxSeqs,
    maxContext,
    kvMemory: 2 * maxSeqs * maxContext * kvBytesPerToken(modelPath, spec),
  });
  try {
    // A warm-up shorter than any cache block, so nothing of it is reused.
    for await (const _ of engine.generate([spec.prompts[0]![0]!, 100, 200, 300], { temperature: 0, maxTokens: 2 }));
    // The weights are random, so a greedy sequence could hit EOS early; llama.cpp is told to go on past it.
    const logitBias = eos === undefined ? undefined : { [eos]: -100 };
    const startMs = performance.now();
    const times = await Promise.all(spec.prompts.map(async (prompt) => {
      const t: number[] = [];
      for await (const d of engine.generate(prompt, { temperature: 0, maxTokens: spec.decodeTokens, ...(logitBias ? { logitBias } : {}) })) {
        const now = performance.now();
        for (let i = 0; i < d.tokens.length; i++) t.push(now);
      }
      return t;
    }));
    const info = engine.info;
    const kv = (await engine.stats()).kv;
    return {
      startMs, times,
      details: { kvManager: info.kvManager, scheduler: info.scheduler, pageBytes: kv.pageBytes, maxContext: info.maxContext, threads: info.threads ?? spec.threads, isa: info.isa ?? 'unknown' },
    };
  } finally {
    await engine.close();
  }
}

/**
 * KV bytes per token of the model in spec.type. The pool gets twice every slot at full context: the
 * engine's default is once, which page rounding (whole pages per range) can leave a page short of
 * holding every sequence at once, and a held-back sequence would leave the batch.
 */
function kvBytesPerToken(modelPath: string, spec: DecodeRunSpec): number {
  const file = GGUFFile.open(modelPath);
  try {
    const c = readModelConfig(file);
    return bytesPerToken(resolveShape({ layers: c.nLayers, kvHeads: c.nKVHeads, headDim: c.headDim, maxSlots: spec.prompts.length, maxContext: contextFor(spec), type: spec.type }));
  } finally {
    file.close();
  }
}
