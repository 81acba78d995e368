// The shared quickselect and position order: the k best by (key desc, position desc) against a sort, on random,
// tied, sorted and reversed keys; rows ordered by position with or without earlier evictions.
import assert from 'node:assert/strict';
import { test } from 'node:test';
import { allRows, orderByPosition, selectBest } from '../../../src/kv/eviction/select.js';
import { byPosition, makeRng, rankRows, scattered, sortedRows } from './helpers.js';

test('selectBest: the k best of a range, any key shape', () => {
  const rng = makeRng(40);
  const shapes = ['random', 'ties', 'sorted', 'reversed', 'constant'] as const;
  for (let trial = 0; trial < 400; trial++) {
    const n = 1 + rng.int(400);
    const shape = shapes[trial % shapes.length]!;
    const key = Float64Array.from({ length: n }, (_, i) =>
      shape === 'random' ? rng.next() : shape === 'ties' ? rng.int(4) : shape === 'sorted' ? i : shape === 'reversed' ? n - i : 1,
    );
    const pos = scattered(rng, n);
    const lo = rng.int(n);
    const hi = lo + rng.int(n - lo + 1);
    const k = rng.int(hi - lo + 2);
    const cand = allRows(n);
    selectBest(cand, lo, hi, k, key, pos);
    const range = Array.from({ length: hi - lo }, (_, i) => lo + i);
    const want = rankRows(range, (r) => key[r]!, pos).slice(0, Math.min(k, hi - lo));
    assert.deepEqual(sortedRows(cand.subarray(lo, lo + Math.min(k, hi - lo))), sortedRows(want), `${shape} n ${n} [${lo}, ${hi}) k ${k}`);
    assert.deepEqual(sortedRows(cand), Array.from(allRows(n)), 'a permutation');
    for (let i = 0; i < lo; i++) assert.equal(cand[i], i, 'outside the range untouched');
    for (let i = hi; i < n; i++) assert.equal(cand[i], i, 'outside the range untouched');
  }
});

test('orderByPosition: rows in position order, in order, scattered, or spread over the whole int32 range', () => {
  const rng = makeRng(41);
  for (let trial = 0; trial < 150; trial++) {
    const rows = rng.int(500);
    const wide = () => Int32Array.from(new Set(Array.from({ length: rows }, () => rng.int(2 ** 32) - 2 ** 31)));
    const pos = [() => Int32Array.from({ length: rows }, (_, i) => 3 * i + 1), () => scattered(rng, rows), wide][trial % 3]!();
    if (pos.length !== rows) continue; // a rare duplicate among the wide draws
    const out = new Int32Array(rows);
    orderByPosition(pos, rows, out, new Int32Array(rows));
    assert.deepEqual(Array.from(out), byPosition(pos, rows));
    if (trial % 3 === 2 && rows > 1) assert.ok(pos.some((p) => p < 0), 'negative positions covered');
  }
});
