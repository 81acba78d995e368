// llama.cpp's side of the end-to-end decode run, through node-llama-cpp: one context with a sequence per
// prompt and the KV cache types under test (experimentalKvCacheKeyType / ValueType). All prompts but
// their last token are evaluated first, concurrently; then every sequence evaluates its last prompt
// token and generates, and node-llama-cpp gathers the sequences' tokens of one cycle into one
// llama_decode, so all sequences decode together in every step, as vserve's do.
import type { LlamaModel, Token } from 'node-llama-cpp';
import { LLAMA_CPP_TYPE } from './kv-format-variants.js';
import { contextFor, type DecodeRunSpec, type DecodeRunTimes } from './kv-e2e-run.js';

export interface LlamaCppDecodeOptions {
  /** Tokens per llama_decode while the prompts are evaluated. */
  batchSize: number;
  /** llama.cpp needs flash attention for a quantized V cache. */
  flashAttention: boolean | 'auto';
  /**
   * How long a decode waits, after the first sequence queued its token, for the others (0: node-llama-cpp's
   * default, the next event-loop turn). Each sequence samples on its own, on libuv's thread pool, so
   * with the default the sequences whose sampling finishes late miss the step and need a llama_decode
   * of their own, which reads all the weights again.
   */
  dispatchWaitMs: number;
}

export async function llamaCppDecodeRun(model: LlamaModel, spec: DecodeRunSpec, opts: LlamaCppDecodeOptions): Promise<DecodeRunTimes> {
  const context = await model.createContext({
    contextSize: contextFor(spec),
    batchSize: opts.batchSize,
    sequences: spec.prompts.length,
    threads: { ideal: spec.threads, min: spec.threads },
    flashAttention: opts.flashAttention,
    ...(opts.dispatchWaitMs > 0 ? { batching: { dispatchSchedule: (dispatch: () => void) => void setTimeout(dispatch, opts.dispatchWaitMs) } } : {}),
    experimentalKvCacheKeyType: LLAMA_CPP_TYPE[spec.type.k],
    experimentalKvCacheValueType: LLAMA_CPP_TYPE[spec.type.v],
  });
  try {
    const sequences = spec.prompts.map(() => context.getSequence());
    const startMs = performance.now();
    await Promise.all(sequences.map((s, i) => s.evaluateWithoutGeneratingNewTokens(spec.prompts[i]!.slice(0, -1) as Token[])));
    const times = await Promise.all(sequences.map(async (s, i) => {
      const t: number[] = [];
      for await (const _ of s.evaluate([spec.prompts[i]!.at(-1)!] as Token[], { temperature: 0, yieldEogToken: true })) {
        t.push(performance.now());
        if (t.length >= spec.decodeTokens) break;
      }
      return t;
    }));
    return {
      startMs, times,
      details: { contextSizePerSequence: context.contextSize, batchSize: context.batchSize, flashAttention: String(context.flashAttention), dispatchWaitMs: opts.dispatchWaitMs, threads: spec.threads },
    };
  } finally {
    await context.dispose();
  }
}
