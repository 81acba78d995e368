// `npm run bench -- arch-parity [--record] [--only NAME]`: every architecture spec (bench/arch-models.ts)
// in each parity weight type, run by llama.cpp (node-llama-cpp) and by vserve on the same generated
// file. Reports, per file, whether the 64 greedy tokens agree (with vserve summing prefill matmuls in
// llama.cpp's order, and in its default order) and how far the first step's logits are
// apart; with --record it also writes llama.cpp's results to test/fixtures/arch-parity/, which the test
// suite checks vserve against without llama.cpp installed.
import { mkdirSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import type { Token } from 'node-llama-cpp';
import { createBackend, type SumOrder } from '../src/backend/index.js';
import { StaticKVManager } from '../src/kv/index.js';
import { GGUFFile } from '../src/model/gguf/reader.js';
import { typeName } from '../src/model/gguf/types.js';
import { createTokenizer } from '../src/model/tokenizer/index.js';
import { TransformerModel } from '../src/model/transformer.js';
import { ARCH_GENERATOR_VERSION, ARCH_SPECS, PARITY_WEIGHT_TYPES, writeArchModel } from './arch-models.js';
import { BenchArgs } from './args.js';
import { repoRoot, resultsDir } from './paths.js';
import { loadLlamaCppModel, NODE_LLAMA_CPP_VERSION } from './single/llama-cpp.js';

export const PARITY_PROMPT = 'Once upon a time, there was a little girl named Lily. She';
export const GREEDY_TOKENS = 64;
/** The context both engines are set up for (LongRoPE picks its factors by it). */
export const PARITY_CONTEXT = 256;
export const FIXTURE_DIR = join(repoRoot, 'test', 'fixtures', 'arch-parity');

/** What llama.cpp produced on one generated file. */
export interface ParityFixture {
  spec: string;
  arch: string;
  weightType: string;
  generatorVersion: number;
  engine: string;
  prompt: number[];
  /** Greedy continuation: argmax of llama.cpp's logits at each step. */
  greedy: number[];
  /** The logits after the prompt, over the whole vocabulary. */
  firstLogits: number[];
}

export const fixtureName = (spec: string, type: string) => `${spec}-${type.toLowerCase()}`;

async function llamaCppRun(path: string, prompt: number[], vocab: number): Promise<{ greedy: number[]; firstLogits: number[] }> {
  const model = await loadLlamaCppModel(path);
  const context = await model.createContext({ contextSize: PARITY_CONTEXT, batchSize: 128, sequences: 1, threads: { ideal: 1, min: 1 }, flashAttention: false, experimentalKvCacheKeyType: 'F32', experimentalKvCacheValueType: 'F32' });
  try {
    const seq = context.getSequence();
    const logitsOf = (row: ReadonlyMap<Token, number> | undefined) => {
      if (!row || row.size !== vocab) throw new Error(`llama.cpp returned ${row?.size ?? 0} logits, not ${vocab}`);
      const out = new Array<number>(vocab).fill(0);
      for (const [t, v] of row) out[t] = v;
      return out;
    };
    const argmax = (v: number[]) => v.reduce((best, x, i) => (x > v[best]! ? i : best), 0);
    const evals = await seq.controlledEvaluate(prompt.map((t, i) => (i === prompt.length - 1 ? [t as Token, { generateNext: { logits: true } }] : (t as Token))));
    const firstLogits = logitsOf(evals.at(-1)?.next.logits);
    const greedy = [argmax(firstLogits)];
    while (greedy.length < GREEDY_TOKENS) {
      const [r] = await seq.controlledEvaluate([[greedy.at(-1)! as Token, { generateNext: { logits: true } }]]);
      greedy.push(argmax(logitsOf(r?.next.logits)));
    }
    return { greedy, firstLogits };
  } finally {
    await context.dispose();
    await model.dispose();
  }
}

/**
 * vserve's greedy tokens and first logits on the file, on a backend. With `follow`, the tokens fed
 * back are those (another engine's greedy tokens) instead of vserve's own picks, and `gaps[i]` is how
 * far below vserve's top logit follow[i]'s was at step i (0 where vserve picks it too).
 */
export function vserveRun(path: string, prompt: readonly number[], backendKind: 'native' | 'reference', steps = GREEDY_TOKENS, follow?: readonly number[], sumOrder: SumOrder = 'llama.cpp'): { greedy: number[]; firstLogits: Float32Array; gaps: number[] } {
  const backend = createBackend(backendKind, { threads: 1, sumOrder });
  const model = TransformerModel.load(path, backend, { contextSize: PARITY_CONTEXT });
  try {
    const c = model.config;
    // K and V in f32, as llamaCppRun's context stores them: vserve's default f16 cache rounds every K and
    // V value, which alone moves these logits far past the engines' other differences (bench/README.md).
    const kv = new StaticKVManager({ layers: c.nLayers, kvHeads: c.nKVHeads, headDim: c.headDim, maxSlots: 1, maxContext: prompt.length + steps, type: { k: 'f32', v: 'f32' } });
    if (kv.allocSlot() !== 0) throw new Error('the KV manager gave no slot');
    const all = [...prompt];
    kv.step(Int32Array.of(prompt.length + steps));
    let logits = model.forward({ tokens: Int32Array.from(prompt), positions: Int32Array.from(prompt, (_, i) => i), slots: new Int32Array(prompt.length), logitRows: Int32Array.of(prompt.length - 1) }, kv.view());
    const firstLogits = logits.slice();
    const greedy: number[] = [];
    const gaps: number[] = [];
    for (;;) {
      let best = 0;
      for (let i = 1; i < logits.length; i++) if (logits[i]! > logits[best]!) best = i;
      greedy.push(best);
      const next = follow ? follow[greedy.length - 1]! : best;
      if (follow) gaps.push(logits[best]! - logits[next]!);
      if (greedy.length >= steps) break;
      all.push(next);
      logits = model.forward({ tokens: Int32Array.of(next), positions: Int32Array.of(all.length - 1), slots: Int32Array.of(0), logitRows: Int32Array.of(0) }, kv.view());
    }
    return { greedy, firstLogits, gaps };
  } finally {
    model.close();
    backend.close();
  }
}

export async function archParityCommand(argv: readonly string[]): Promise<void> {
  const args = new BenchArgs(argv);
  const record = args.flag('record');
  const only = args.string('only', '');
  const out = args.string('out', join(resultsDir, 'arch-parity.json'));
  const dir = mkdtempSync(join(tmpdir(), 'vserve-arch-'));
  const rows: Record<string, unknown>[] = [];
  try {
    for (const spec of ARCH_SPECS.filter((s) => !only || s.name === only)) {
      for (const type of PARITY_WEIGHT_TYPES) {
        const name = fixtureName(spec.name, typeName(type));
        const path = writeArchModel(join(dir, `${name}.gguf`), spec, type);
        const file = GGUFFile.open(path);
        const tokenizer = createTokenizer(file);
        file.close();
        const prompt = tokenizer.encode(PARITY_PROMPT);
        let peer: { greedy: number[]; firstLogits: number[] } | undefined;
        let peerError: string | undefined;
        try {
          peer = await llamaCppRun(path, prompt, tokenizer.vocabSize);
        } catch (e) {
          peerError = (e as Error).message;
        }
        const mine = vserveRun(path, prompt, 'native');
        const fast = vserveRun(path, prompt, 'native', GREEDY_TOKENS, undefined, 'fast');
        const row: Record<string, unknown> = { file: name, arch: spec.arch, weightType: typeName(type) };
        if (peer) {
          const firstDiff = peer.greedy.findIndex((t, i) => t !== mine.greedy[i]);
          let maxAbs = 0;
          peer.firstLogits.forEach((v, i) => (maxAbs = Math.max(maxAbs, Math.abs(v - mine.firstLogits[i]!))));
          Object.assign(row, { greedySame: firstDiff < 0, firstDifferentToken: firstDiff < 0 ? null : firstDiff, maxAbsLogitDiff: Number(maxAbs.toPrecision(3)), top1Same: peer.greedy[0] === mine.greedy[0] });
          // The same under vserve's default sum order (prefill one sum per block).
          row.greedySameFastSums = peer.greedy.every((t, i) => t === fast.greedy[i]);
          if (record) {
            mkdirSync(FIXTURE_DIR, { recursive: true });
            const fixture: ParityFixture = {
              spec: spec.name, arch: spec.arch, weightType: typeName(type), generatorVersion: ARCH_GENERATOR_VERSION,
              engine: `llama.cpp via node-llama-cpp ${NODE_LLAMA_CPP_VERSION}`, prompt, greedy: peer.greedy,
              firstLogits: peer.firstLogits.map((v) => Number(v.toPrecision(7))),
            };
            writeFileSync(join(FIXTURE_DIR, `${name}.json`), `${JSON.stringify(fixture)}\n`);
          }
        } else row.llamaCppError = peerError;
        rows.push(row);
        process.stderr.write(`${JSON.stringify(row)}\n`);
      }
    }
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
  mkdirSync(join(out, '..'), { recursive: true });
  writeFileSync(out, `${JSON.stringify({ engine: `llama.cpp via node-llama-cpp ${NODE_LLAMA_CPP_VERSION}`, rows }, null, 2)}\n`);
  process.stderr.write(`wrote ${out}\n`);
}
