// Prepacking: prefill of prompts with very different lengths, token-packed (each prompt's tokens back to
// back, positions restarting per sequence) against the padded batch a framework without packing runs
// (every prompt padded to the longest). Same model, same kernels; only the batch layout differs.
import { ArrayKV } from '../src/backend/array-kv.js';
import { packBatch } from '../src/engine/batch-packer.js';
import { Completion } from '../src/engine/completion.js';
import { Sequence } from '../src/engine/sequence.js';
import type { LoadedModel } from '../src/model/load.js';
import { median, round } from './stats.js';

export interface PrepackingResult {
  prompts: number[];
  realTokens: number;
  paddedTokens: number;
  packedMs: number;
  paddedMs: number;
  speedup: number;
}

export function benchPrepacking({ model, tokenizer }: LoadedModel, lengths: readonly number[], repeats: number): PrepackingResult {
  const c = model.config;
  const longest = Math.max(...lengths);
  const kv = new ArrayKV(c.nLayers, lengths.length, longest, c.nKVHeads, c.headDim);
  const work = lengths.map((n, i) => {
    const prompt = Array.from({ length: n }, (_, j) => (j === 0 ? (tokenizer.bos ?? 1) : 3 + ((i * 7919 + j * 104729) % (c.vocabSize - 3))));
    const seq = new Sequence(i, prompt, new Completion(tokenizer, { temperature: 0 }, 1));
    seq.slot = i;
    return { seq, count: n };
  });
  const time = (padTo?: number) => {
    const { batch } = packBatch(work, { padTo });
    const samples: number[] = [];
    for (let r = 0; r < repeats; r++) {
      const t0 = performance.now();
      model.forward(batch, kv);
      samples.push(performance.now() - t0);
    }
    return { ms: median(samples), tokens: batch.tokens.length };
  };
  const packed = time();
  const padded = time(longest);
  return {
    prompts: [...lengths],
    realTokens: packed.tokens,
    paddedTokens: padded.tokens,
    packedMs: round(packed.ms),
    paddedMs: round(padded.ms),
    speedup: round(padded.ms / packed.ms),
  };
}
