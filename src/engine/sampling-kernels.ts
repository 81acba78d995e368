// The sampler's passes over the whole vocabulary, native (vectorized, native/sampling.cc) where the
// addon loads, and plain TypeScript otherwise; both give the same answers (test/engine/sampling-kernels).
import { loadNativeAddon } from '../backend/native/addon.js';

export interface LogitStats {
  max: number;
  /** Index of the first maximum. */
  argmax: number;
  /** log(sum(exp(logits))). */
  logSumExp: number;
}

export interface SamplingKernels {
  stats(logits: Float32Array): LogitStats;
  /** Indices of the `count` largest values, largest first (ties: lower index first). */
  topIndices(values: Float32Array, count: number): Int32Array;
  /**
   * An index drawn from softmax(values / temperature) over the values >= floor (default: all), given
   * a uniform r in [0, 1). `max`, the values' maximum where the caller has it (stats()), saves a pass.
   */
  drawTempered(values: Float32Array, temperature: number, r: number, floor?: number, max?: number): number;
  /**
   * Top-p's nucleus as a threshold: the smallest value t such that the values >= t hold at least p
   * of softmax(values)'s mass (logSumExp: that softmax's normaliser). Tokens tied at t are all in.
   */
  nucleusFloor(values: Float32Array, logSumExp: number, p: number): number;
}

export const scriptSamplingKernels: SamplingKernels = {
  stats(logits) {
    let max = -Infinity, argmax = 0;
    for (let i = 0; i < logits.length; i++) {
      if (logits[i]! > max) {
        max = logits[i]!;
        argmax = i;
      }
    }
    let sum = 0;
    for (let i = 0; i < logits.length; i++) sum += Math.exp(logits[i]! - max);
    return { max, argmax, logSumExp: Number.isFinite(max) ? max + Math.log(sum) : max };
  },
  topIndices(values, count) {
    const ids = Array.from(values.keys());
    ids.sort((a, b) => values[b]! - values[a]! || a - b);
    return Int32Array.from(ids.slice(0, Math.min(count, values.length)));
  },
  drawTempered(values, temperature, r, floor = -Infinity) {
    const { max } = this.stats(values);
    let total = 0;
    for (let i = 0; i < values.length; i++) if (values[i]! >= floor) total += Math.exp((values[i]! - max) / temperature);
    const target = r * total;
    let run = 0, last = 0;
    for (let i = 0; i < values.length; i++) {
      if (!(values[i]! > -Infinity) || values[i]! < floor) continue;
      last = i;
      run += Math.exp((values[i]! - max) / temperature);
      if (run > target) return i;
    }
    return last;
  },
  nucleusFloor(values, logSumExp, p) {
    const sorted = Float32Array.from(values).sort().reverse();
    let run = 0, last = sorted[0]!;
    for (const v of sorted) {
      if (!(v > -Infinity)) break;
      last = v;
      run += Math.exp(v - logSumExp);
      if (run >= p) return v;
    }
    return last;
  },
};

function nativeSamplingKernels(): SamplingKernels | undefined {
  let addon;
  try {
    addon = loadNativeAddon();
  } catch {
    return undefined;
  }
  const out = new Float64Array(3);
  return {
    stats(logits) {
      addon.logitStats(logits, out);
      return { max: out[0]!, argmax: out[1]!, logSumExp: out[2]! };
    },
    topIndices(values, count) {
      const ids = new Int32Array(Math.min(count, values.length));
      addon.topIndices(values, ids.length, ids);
      return ids;
    },
    drawTempered: (values, temperature, r, floor = -Infinity, max?: number) =>
      addon.drawTempered(values, 1 / temperature, r, floor > -Infinity ? floor : undefined, max),
    nucleusFloor: (values, logSumExp, p) => addon.nucleusFloor(values, logSumExp, p),
  };
}

let chosen: SamplingKernels | undefined;

/** The native kernels where the addon loads, else the TypeScript ones. */
export function samplingKernels(): SamplingKernels {
  chosen ??= nativeSamplingKernels() ?? scriptSamplingKernels;
  return chosen;
}
