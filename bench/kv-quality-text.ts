// The texts the KV quality harness scores: the model's own samples (DESIGN.md §5 measures without a
// dataset), generated token by token through the reference configuration (the f32 cache) with a seeded
// sampler, from BOS until the text has the length asked for. End-of-generation tokens are never drawn
// (llama.cpp's ignore_eos does the same), so every text fills its length with the model's writing.
import { Sampler } from '../src/engine/sampler.js';
import type { QualityConfig } from './kv-quality-run.js';

export interface TextOptions {
  bos: number;
  /** Tokens in the text, BOS included. */
  tokens: number;
  vocabSize: number;
  temperature: number;
  seed: number;
  /** Token ids never drawn (end of generation). */
  banned: readonly number[];
}

export async function generateText(config: QualityConfig, opts: TextOptions): Promise<number[]> {
  const sampler = new Sampler({ temperature: opts.temperature, seed: opts.seed });
  const allowed = new Uint8Array(opts.vocabSize).fill(1);
  for (const id of opts.banned) allowed[id] = 0;
  const text = [opts.bos];
  const run = await config.open(opts.tokens);
  try {
    while (text.length < opts.tokens) {
      const logits = await run.feed(Int32Array.of(text.at(-1)!), text.length - 1);
      text.push(sampler.sample(logits, text, allowed).token);
    }
  } finally {
    await run.close();
  }
  return text;
}
