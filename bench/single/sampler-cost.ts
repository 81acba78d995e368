// What vserve's Sampler costs per generated token on a model's own decode logits: each setting's
// sample() timed over the rows the benchmark's decode run produced, many times over, so the cost can
// be set against a decode step of the same model (issue #15's target: at most 3% of it).
import { Sampler, type SamplingParams } from '../../src/engine/sampler.js';
import { samplingKernels, scriptSamplingKernels } from '../../src/engine/sampling-kernels.js';
import { median } from '../stats.js';

/** The target share of a decode step that sampling may take. */
export const SAMPLER_TARGET_FRACTION = 0.03;

export const SAMPLER_SETTINGS: readonly { name: string; params: SamplingParams }[] = [
  { name: 'top-k 40 + top-p 0.9, T 0.8', params: { temperature: 0.8, topK: 40, topP: 0.9 } },
  { name: 'top-p 0.9, T 0.8', params: { temperature: 0.8, topP: 0.9 } },
  { name: 'greedy', params: { temperature: 0 } },
];

export interface SamplerCost {
  setting: string;
  params: SamplingParams;
  /** Median over batches of the mean time of one sample() call. */
  msPerToken: number;
  /** sample() calls timed in all. */
  calls: number;
}

export interface SamplerMeasurement {
  /** 'native' (the addon's whole-vocabulary passes) or 'typescript'. */
  kernels: string;
  rows: number;
  vocab: number;
  /**
   * Tokens top-p 0.9 keeps on these rows (median over rows): how peaked the model's distributions are,
   * which decides how far top-p alone has to look.
   */
  topP90Tokens: number;
  costs: SamplerCost[];
}

const BATCHES = 7;
/** A batch repeats the rows until it has run this long, so timer resolution does not matter. */
const MIN_BATCH_MS = 25;

/** Times every setting's sample() on `rows` (a few decode logits rows of one model). */
export function measureSamplerCost(rows: readonly Float32Array[]): SamplerMeasurement {
  if (rows.length === 0) throw new Error('no logits rows to sample from');
  const costs = SAMPLER_SETTINGS.map(({ name, params }) => {
    const sampler = new Sampler({ ...params, seed: 1 });
    const pass = () => { for (const row of rows) sampler.sample(row); };
    pass(); // warm: JIT and the rows in cache, as they are right after a decode step
    let calls = 0;
    const perCall: number[] = [];
    for (let b = 0; b < BATCHES; b++) {
      let n = 0;
      const t0 = performance.now();
      let elapsed = 0;
      do {
        pass();
        n += rows.length;
        elapsed = performance.now() - t0;
      } while (elapsed < MIN_BATCH_MS);
      perCall.push(elapsed / n);
      calls += n;
    }
    return { setting: name, params, msPerToken: median(perCall), calls };
  });
  return {
    kernels: samplingKernels() === scriptSamplingKernels ? 'typescript' : 'native',
    rows: rows.length,
    vocab: rows[0]!.length,
    topP90Tokens: Math.round(median(rows.map((r) => nucleusSize(r, 0.9)))),
    costs,
  };
}

/** How many of the most likely tokens it takes to reach probability mass `p` (untempered, as top-p sees it). */
function nucleusSize(logits: Float32Array, p: number): number {
  const sorted = Float64Array.from(logits).sort().reverse();
  let sum = 0;
  for (const v of sorted) sum += Math.exp(v - sorted[0]!);
  let mass = 0;
  for (let i = 0; i < sorted.length; i++) {
    mass += Math.exp(sorted[i]! - sorted[0]!) / sum;
    if (mass >= p) return i + 1;
  }
  return sorted.length;
}
