// The arithmetic of KV quality (DESIGN.md §5): how far a configuration's next-token distributions are
// from the reference's on the same text, teacher-forced. All of it in float64, from raw logits, so a
// metric is never limited by the f32 the model computes in.
//
// Definitions, per scored position t of a text x (row t of the logits predicts x[t+1]):
// - KL(p_ref || p_cfg) = sum_i p_ref(i) (log p_ref(i) - log p_cfg(i)) over the full vocabulary;
// - top-1 agreement: argmax p_ref = argmax p_cfg (ties go to the lowest token id);
// - perplexity ratio: ppl_cfg / ppl_ref = exp(mean_t (log p_ref(x[t+1]) - log p_cfg(x[t+1])));
// - first divergence: the smallest t whose argmaxes differ (null when none do). Since the text is fixed,
//   it is where a greedy decoder under the configuration, handed the prefix x[0..t], would first pick a
//   different token than one under the reference; t = 0 is the prediction right after BOS.

/** log-softmax of a logits row in float64 (into `out` when given, reused across rows). */
export function logSoftmax(logits: ArrayLike<number>, out = new Float64Array(logits.length)): Float64Array {
  let max = -Infinity;
  for (let i = 0; i < logits.length; i++) max = Math.max(max, logits[i]!);
  let sum = 0;
  for (let i = 0; i < logits.length; i++) sum += Math.exp(logits[i]! - max);
  const lse = max + Math.log(sum);
  for (let i = 0; i < logits.length; i++) out[i] = logits[i]! - lse;
  return out;
}

/** KL(p || q) from log-probabilities: exactly 0 when the rows are equal (every term is p x 0). */
export function klDivergence(logP: ArrayLike<number>, logQ: ArrayLike<number>): number {
  let kl = 0;
  for (let i = 0; i < logP.length; i++) {
    const p = Math.exp(logP[i]!);
    if (p > 0) kl += p * (logP[i]! - logQ[i]!);
  }
  return kl;
}

/** Index of the largest value; the lowest index among equals. */
export function argmax(x: ArrayLike<number>): number {
  let best = 0;
  for (let i = 1; i < x.length; i++) if (x[i]! > x[best]!) best = i;
  return best;
}

/** What one scored position contributes: the configuration's distribution against the reference's. */
export interface PositionScore {
  kl: number;
  sameTop1: boolean;
  /** log p(next token of the text) under the reference and under the configuration. */
  refLogprob: number;
  cfgLogprob: number;
}

export function scorePosition(refLogprobs: ArrayLike<number>, cfgLogprobs: ArrayLike<number>, next: number): PositionScore {
  return {
    kl: klDivergence(refLogprobs, cfgLogprobs),
    sameTop1: argmax(refLogprobs) === argmax(cfgLogprobs),
    refLogprob: refLogprobs[next]!,
    cfgLogprob: cfgLogprobs[next]!,
  };
}

/** Nearest-rank percentile (q in (0, 1]): the smallest value with at least q of the values at or below it. */
export function percentile(values: readonly number[], q: number): number {
  if (values.length === 0) return NaN;
  const sorted = [...values].sort((a, b) => a - b);
  return sorted[Math.max(0, Math.ceil(q * sorted.length) - 1)]!;
}

/**
 * The lower median: the middle value, or the smaller of the two middle ones. A rank, never an average,
 * so it stays a real position and accepts Infinity for a text that never diverged.
 */
export function lowerMedian(values: readonly number[]): number {
  if (values.length === 0) return NaN;
  const sorted = [...values].sort((a, b) => a - b);
  return sorted[Math.floor((sorted.length - 1) / 2)]!;
}

/** Index of the first position whose top-1 tokens differ, or null when all agree. */
export function firstDivergence(scores: readonly PositionScore[]): number | null {
  const i = scores.findIndex((s) => !s.sameTop1);
  return i < 0 ? null : i;
}

export interface QualitySummary {
  positions: number;
  meanKL: number;
  p99KL: number;
  maxKL: number;
  /** Share of positions with the same top-1 token. */
  top1Agreement: number;
  /** Perplexity of the text under the reference and under the configuration, and their ratio (cfg / ref). */
  refPpl: number;
  cfgPpl: number;
  pplRatio: number;
}

/** The metrics over a set of scored positions (one text's, or all texts' pooled). */
export function summarize(scores: readonly PositionScore[]): QualitySummary {
  const n = scores.length;
  let kl = 0, maxKL = 0, same = 0, ref = 0, cfg = 0, diff = 0;
  for (const s of scores) {
    kl += s.kl;
    maxKL = Math.max(maxKL, s.kl);
    if (s.sameTop1) same++;
    ref += s.refLogprob;
    cfg += s.cfgLogprob;
    // The ratio from the per-position differences, so equal logprobs give exactly 1.
    diff += s.refLogprob - s.cfgLogprob;
  }
  return {
    positions: n,
    meanKL: kl / n,
    p99KL: percentile(scores.map((s) => s.kl), 0.99),
    maxKL,
    top1Agreement: same / n,
    refPpl: Math.exp(-ref / n),
    cfgPpl: Math.exp(-cfg / n),
    pplRatio: Math.exp(diff / n),
  };
}
