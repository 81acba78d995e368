// moveList turns a keep set into the compaction list the KV managers apply: rows already in place stay, only
// kept rows beyond the new length move, into the holes; applyMoves carries per-row data along.
import assert from 'node:assert/strict';
import { test } from 'node:test';
import { applyMoves, moveList } from '../../../src/kv/eviction/keep-order.js';
import { makeRng } from './helpers.js';

test('moveList: rows below the new length stay, the tail fills the holes in order', () => {
  // keep 0, 2, 5, 7 of 8: rows 1 and 3 are holes, filled by 5 then 7
  assert.deepEqual(Array.from(moveList(Int32Array.of(0, 2, 5, 7), 8)), [0, 5, 2, 7]);
  assert.deepEqual(Array.from(moveList(Int32Array.of(0, 1, 2), 3)), [0, 1, 2]);
  assert.deepEqual(Array.from(moveList(Int32Array.of(6, 7), 8)), [6, 7]);
  assert.deepEqual(Array.from(moveList(new Int32Array(0), 5)), []);
});

test('moveList: random keep sets give a valid, minimal list (property)', () => {
  const rng = makeRng(11);
  for (let trial = 0; trial < 500; trial++) {
    const rows = 1 + rng.int(300);
    const keepSet = Int32Array.from(Array.from({ length: rows }, (_, r) => r).filter(() => rng.next() < rng.next()));
    const k = keepSet.length;
    const list = moveList(keepSet, rows);
    assert.equal(list.length, k);
    const members = new Set(keepSet);
    let moved = 0;
    for (let i = 0; i < k; i++) {
      assert.ok(list[i]! >= i, 'list[i] >= i');
      if (members.has(i)) assert.equal(list[i], i, 'a kept row below the new length stays');
      if (list[i] !== i) moved++;
    }
    assert.equal(new Set(list).size, k, 'distinct');
    assert.deepEqual([...list].sort((a, b) => a - b), Array.from(keepSet), 'the same set');
    assert.equal(moved, Array.from(keepSet).filter((r) => r >= k).length, 'only the rows beyond the new length move');
  }
});

test('moveList: rejects sets that are not distinct ascending rows in range', () => {
  assert.throws(() => moveList(Int32Array.of(1, 0), 4), /ascending/);
  assert.throws(() => moveList(Int32Array.of(1, 1), 4), /ascending/);
  assert.throws(() => moveList(Int32Array.of(0, 4), 4), /below 4/);
  assert.throws(() => moveList(Int32Array.of(-1, 2), 4), /ascending/);
});

test('applyMoves: positions and scores move with their rows, in place', () => {
  const rng = makeRng(5);
  for (let trial = 0; trial < 100; trial++) {
    const rows = 1 + rng.int(200);
    const keepSet = Int32Array.from(Array.from({ length: rows }, (_, r) => r).filter(() => rng.next() < 0.4));
    const list = moveList(keepSet, rows);
    const positions = Int32Array.from({ length: rows }, () => rng.int(1 << 20));
    const scores = Float32Array.from({ length: rows }, () => rng.next());
    const wide = Float64Array.from({ length: rows * 3 }, () => rng.next());
    const before = { positions: positions.slice(), scores: scores.slice(), wide: wide.slice() };
    applyMoves(list, positions);
    applyMoves(list, scores);
    applyMoves(list, wide, 3);
    for (let i = 0; i < list.length; i++) {
      const from = list[i]!;
      assert.equal(positions[i], before.positions[from]);
      assert.equal(scores[i], before.scores[from]);
      for (let c = 0; c < 3; c++) assert.equal(wide[i * 3 + c], before.wide[from * 3 + c]);
    }
    // the kept rows' data, as a multiset, is what the keep set named
    assert.deepEqual(
      Array.from(positions.subarray(0, list.length)).sort((a, b) => a - b),
      Array.from(keepSet, (r) => before.positions[r]!).sort((a, b) => a - b),
    );
  }
});
