// Shared pieces of the eviction tests: synthetic inputs (positions with gaps and out of order, as after earlier
// evictions), a keep-set shape check, and a plain sort-based ranking the policies' quickselects are checked against.
import assert from 'node:assert/strict';
import type { EvictionInput, KeepSets } from '../../../src/kv/eviction/policy.js';
import { makeRng } from '../rng.js';

export type Rng = ReturnType<typeof makeRng>;
export { makeRng };

export interface Synthetic {
  layers: number;
  kvHeads: number;
  rows: number;
  keep: number;
  window?: number;
  positions: Int32Array[][]; // [layer][head]
  scores: Float32Array[][];
}

export function input(s: Synthetic): EvictionInput {
  return {
    layers: s.layers,
    kvHeads: s.kvHeads,
    rows: s.rows,
    keep: s.keep,
    window: s.window ?? 0,
    positions: (l, h) => s.positions[l]![h]!,
    scores: (l, h) => s.scores[l]![h]!,
  };
}

export function grid<T>(layers: number, heads: number, f: (l: number, h: number) => T): T[][] {
  return Array.from({ length: layers }, (_, l) => Array.from({ length: heads }, (_, h) => f(l, h)));
}

/** Positions 0..rows-1 in row order, as right after prefill. */
export function inOrder(rows: number): Int32Array {
  return Int32Array.from({ length: rows }, (_, i) => i);
}

/** `rows` distinct positions below 3 * rows (gaps where tokens were evicted), shuffled across rows. */
export function scattered(rng: Rng, rows: number): Int32Array {
  const picked: number[] = [];
  for (let p = 0; picked.length < rows; p++) if (rng.next() < 0.34 || 3 * rows - p <= rows - picked.length) picked.push(p);
  return Int32Array.from(shuffle(rng, picked));
}

export function shuffle<T>(rng: Rng, xs: T[]): T[] {
  for (let i = xs.length - 1; i > 0; i--) {
    const j = rng.int(i + 1);
    [xs[i], xs[j]] = [xs[j]!, xs[i]!];
  }
  return xs;
}

export function randomScores(rng: Rng, rows: number): Float32Array {
  return Float32Array.from({ length: rows }, () => rng.next());
}

/** Every set ascending, distinct, below rows, of the expected count per layer (the same for all heads). */
export function checkShape(sets: KeepSets, layers: number, heads: number, rows: number, counts: number | number[]): void {
  assert.equal(sets.length, layers);
  for (let l = 0; l < layers; l++) {
    assert.equal(sets[l]!.length, heads);
    const want = typeof counts === 'number' ? counts : counts[l]!;
    for (let h = 0; h < heads; h++) {
      const s = sets[l]![h]!;
      assert.equal(s.length, want, `layer ${l} head ${h} count`);
      for (let i = 0; i < s.length; i++) {
        assert.ok(s[i]! >= 0 && s[i]! < rows, `row ${s[i]} in range`);
        if (i > 0) assert.ok(s[i]! > s[i - 1]!, 'ascending and distinct');
      }
    }
  }
}

/** Rows sorted best first by (key desc, position desc), the tie rule every policy documents. */
export function rankRows(rows: number[], key: (r: number) => number, pos: ArrayLike<number>): number[] {
  return [...rows].sort((a, b) => key(b) - key(a) || pos[b]! - pos[a]!);
}

export function sortedRows(rows: Iterable<number>): number[] {
  return [...rows].sort((a, b) => a - b);
}

/** Rows by ascending position. */
export function byPosition(pos: ArrayLike<number>, rows: number): number[] {
  return Array.from({ length: rows }, (_, r) => r).sort((a, b) => pos[a]! - pos[b]!);
}

/** A reference SnapKV for one head: window = newest min(window, keep); pooled votes over the rest, by position. */
export function refSnapHead(
  pos: Int32Array,
  score: Float32Array,
  rows: number,
  keep: number,
  window: number,
  kernel = 7,
  pooling: 'max' | 'avg' = 'max',
): number[] {
  if (keep >= rows) return Array.from({ length: rows }, (_, r) => r);
  const order = byPosition(pos, rows);
  const w = Math.min(window, keep);
  const rest = order.slice(0, rows - w);
  const pooled = new Map<number, number>();
  const half = kernel >> 1;
  rest.forEach((row, i) => {
    const near = rest.slice(Math.max(0, i - half), i + half + 1).map((r) => score[r]!);
    pooled.set(row, pooling === 'max' ? Math.max(...near) : near.reduce((a, b) => a + b, 0) / kernel);
  });
  const chosen = rankRows(rest, (r) => pooled.get(r)!, pos).slice(0, keep - w);
  return sortedRows([...chosen, ...order.slice(rows - w)]);
}

export function asArray(set: Int32Array): number[] {
  return Array.from(set);
}
