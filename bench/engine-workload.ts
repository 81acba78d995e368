// Synthetic serving workloads for the engine benchmark: Poisson arrivals, and prompt/output lengths drawn
// from a uniform or a Zipf mix (mostly short, a few long), all from one seed so every scheduler and KV
// manager sees exactly the same requests.
import { Rng } from '../src/engine/rng.js';

export type LengthMix = 'uniform' | 'zipf';

export interface WorkloadSpec {
  requests: number;
  /** Mean arrivals per second (Poisson). */
  rate: number;
  mix: LengthMix;
  promptLen: [min: number, max: number];
  outputLen: [min: number, max: number];
  seed: number;
}

export interface BenchRequest {
  /** Seconds after the start at which the request arrives. */
  at: number;
  prompt: number[];
  maxTokens: number;
}

/** Draws from [min, max]: uniformly, or Zipf(s = 1.1) over 64 evenly spaced lengths. */
function lengthSampler(mix: LengthMix, rng: Rng): (range: [number, number]) => number {
  const ranks = 64;
  const weights = Array.from({ length: ranks }, (_, k) => 1 / (k + 1) ** 1.1);
  const total = weights.reduce((a, b) => a + b, 0);
  return ([min, max]) => {
    if (mix === 'uniform') return min + Math.floor(rng.next() * (max - min + 1));
    let u = rng.next() * total;
    let k = 0;
    while (k < ranks - 1 && (u -= weights[k]!) > 0) k++;
    return Math.round(min + ((max - min) * k) / (ranks - 1));
  };
}

/** `n` random token ids, avoiding the first three (unknown, BOS, EOS in the Llama vocabularies). */
export function randomTokens(rng: Rng, n: number, vocabSize: number): number[] {
  return Array.from({ length: n }, () => 3 + Math.floor(rng.next() * (vocabSize - 3)));
}

/** The requests of a workload: random token ids after BOS (the benchmark models have random weights). */
export function makeWorkload(spec: WorkloadSpec, vocabSize: number, bos: number): BenchRequest[] {
  const rng = new Rng(spec.seed);
  const length = lengthSampler(spec.mix, rng);
  let t = 0;
  return Array.from({ length: spec.requests }, () => {
    t += -Math.log(1 - rng.next()) / spec.rate;
    const n = length(spec.promptLen);
    const prompt = [bos, ...randomTokens(rng, n - 1, vocabSize)];
    return { at: t, prompt, maxTokens: length(spec.outputLen) };
  });
}
