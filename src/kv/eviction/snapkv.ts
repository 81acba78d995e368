// SnapKV: the last `window` prompt tokens (the observation window) already attend to what generation will
// need; their summed attention votes for the earlier rows of each KV head, pooled over neighbouring positions
// so a chosen token keeps its context. Prompt-only: scores are the window queries' attention mass.
import {
  checkInput,
  evictionArgumentError,
  intOption,
  rowPositions,
  rowScores,
  type EvictionInput,
  type EvictionOptions,
  type KeepSets,
} from './policy.js';
import { allRows, ascendingSet, finite, orderByPosition, selectBest, uniformSets } from './select.js';

/** KVCache-Factory's LongBench runs (SnapKV and PyramidKV baselines): kernel 7, max pooling. */
export const SNAP_KERNEL = 7;
export const SNAP_POOLING = 'max';

export interface SnapConfig {
  pooling: 'max' | 'avg';
  kernel: number;
}

export function snapConfig(opts: EvictionOptions = {}): SnapConfig {
  const kernel = intOption('kernel', opts.kernel, SNAP_KERNEL);
  if (kernel % 2 === 0) throw evictionArgumentError(`eviction: option kernel must be odd, got ${kernel}`);
  const pooling = opts.pooling ?? SNAP_POOLING;
  if (pooling !== 'max' && pooling !== 'avg') throw evictionArgumentError(`eviction: option pooling must be 'max' or 'avg', got ${String(pooling)}`);
  return { pooling, kernel };
}

/** Buffers one select call reuses across heads and layers. */
export class SnapScratch {
  readonly order: Int32Array;
  readonly tmp: Int32Array;
  /** Votes, then pooled votes, in position order. */
  readonly vote: Float64Array;
  readonly seq: Float64Array;
  /** Pooled votes by row. */
  readonly pooled: Float64Array;
  constructor(rows: number) {
    this.order = new Int32Array(rows);
    this.tmp = new Int32Array(rows);
    this.vote = new Float64Array(rows);
    this.seq = new Float64Array(rows);
    this.pooled = new Float64Array(rows);
  }
}

/**
 * One layer: per KV head, the min(window, keep) newest rows plus the keep - window rows with the best pooled
 * votes among the rest. Pooling runs along position order over the non-window rows only (as the reference
 * pools the prefix before the window); neighbours are the next rows by position, gaps from earlier
 * evictions closed. 'avg' divides by the kernel at the edges too (avg_pool1d's zero padding).
 */
export function selectSnapLayer(input: EvictionInput, layer: number, keep: number, cfg: SnapConfig, scratch: SnapScratch): Int32Array[] {
  const { kvHeads, rows } = input;
  if (keep >= rows) return new Array<Int32Array>(kvHeads).fill(allRows(rows));
  const { order, tmp, vote, seq, pooled } = scratch;
  const w = Math.min(input.window, keep);
  const n = rows - w;
  const half = cfg.kernel >> 1;
  const sets: Int32Array[] = [];
  for (let h = 0; h < kvHeads; h++) {
    const pos = rowPositions(input, layer, h);
    const s = rowScores(input, layer, h);
    orderByPosition(pos, rows, order, tmp);
    for (let i = 0; i < n; i++) vote[i] = finite(s[order[i]!]!);
    if (cfg.pooling === 'max') maxPool(vote, n, half, seq);
    else avgPool(vote, n, half, cfg.kernel, seq);
    for (let i = 0; i < n; i++) pooled[order[i]!] = seq[i]!; // indexed by row, for the selection below
    const k = keep - w;
    selectBest(order, 0, n, k, pooled, pos);
    sets.push(ascendingSet(rows, order, 0, k, n, rows));
  }
  return sets;
}

/** out[i] = the max of v over [i - half, i + half] clipped to [0, n) (max_pool1d pads with -inf). */
function maxPool(v: Float64Array, n: number, half: number, out: Float64Array): void {
  for (let i = 0; i < n; i++) {
    const hi = Math.min(n - 1, i + half);
    let m = -Infinity;
    for (let j = Math.max(0, i - half); j <= hi; j++) if (v[j]! > m) m = v[j]!;
    out[i] = m;
  }
}

/** out[i] = the sum of v over [i - half, i + half] clipped to [0, n), over the full kernel (zero padding). */
function avgPool(v: Float64Array, n: number, half: number, kernel: number, out: Float64Array): void {
  for (let i = 0; i < n; i++) {
    const hi = Math.min(n - 1, i + half);
    let sum = 0;
    for (let j = Math.max(0, i - half); j <= hi; j++) sum += v[j]!;
    out[i] = finite(sum / kernel);
  }
}

export function selectSnapKV(input: EvictionInput, opts: EvictionOptions = {}): KeepSets {
  checkInput(input);
  const cfg = snapConfig(opts);
  const { layers, kvHeads, rows, keep } = input;
  if (keep >= rows) return uniformSets(layers, kvHeads, allRows(rows));
  const scratch = new SnapScratch(rows);
  const out: KeepSets = [];
  for (let l = 0; l < layers; l++) out.push(selectSnapLayer(input, l, keep, cfg, scratch));
  return out;
}
