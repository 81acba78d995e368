// ChunkKV: whole chunks of 10 consecutive non-window rows by their votes summed over the layer's KV heads; the
// window stays; the same rows for every head of a layer; an exact count; layer groups may share a selection.
import assert from 'node:assert/strict';
import { test } from 'node:test';
import { selectChunkKV } from '../../../src/kv/eviction/chunkkv.js';
import { byPosition, checkShape, grid, input, inOrder, makeRng, randomScores, rankRows, scattered, shuffle, sortedRows } from './helpers.js';

const range = (a: number, b: number) => Array.from({ length: b - a }, (_, i) => a + i);

/** Five chunks of 10 then an 8-row window; per head votes so that summed over heads chunk 3 > 1 > 0 > 4 > 2. */
function fiveChunks(): Float32Array[] {
  const rows = 58;
  const h0 = new Float32Array(rows);
  const h1 = new Float32Array(rows);
  for (let i = 0; i < 10; i++) {
    h0[i] = 0.1 + i * 0.01; // chunk 0: 1.45 + 1.5 = 2.95, its newest rows the best
    h1[i] = 0.15;
    h0[10 + i] = 0.3; // chunk 1: 3 (head 0 alone)
    h1[30 + i] = 0.5; // chunk 3: 5 (head 1 alone)
    h0[40 + i] = 0.2; // chunk 4: 2
  }
  return [h0, h1];
}

test('chunkkv: whole chunks by votes summed over heads, the window, the same rows per head', () => {
  const scores = fiveChunks();
  const positions = [[inOrder(58), inOrder(58)]];
  const sets = selectChunkKV(input({ layers: 1, kvHeads: 2, rows: 58, keep: 8 + 20, window: 8, positions, scores: [scores] }));
  checkShape(sets, 1, 2, 58, 28);
  assert.deepEqual(Array.from(sets[0]![0]!), [...range(10, 20), ...range(30, 40), ...range(50, 58)]);
  assert.deepEqual(sets[0]![1], sets[0]![0]);
});

test('chunkkv: a remainder below a chunk takes the best rows of the next chunk', () => {
  const positions = [[inOrder(58), inOrder(58)]];
  const sets = selectChunkKV(input({ layers: 1, kvHeads: 2, rows: 58, keep: 8 + 25, window: 8, positions, scores: [fiveChunks()] }));
  checkShape(sets, 1, 2, 58, 33);
  assert.deepEqual(Array.from(sets[0]![0]!), [...range(5, 20), ...range(30, 40), ...range(50, 58)]);
});

test('chunkkv: a short last chunk competes by its sum', () => {
  // 45 non-window rows: chunks 0..3 of 10, chunk 4 of 5 rows (40..44), then a 5-row window
  const rows = 50;
  const s = new Float32Array(rows).fill(0.1);
  for (let i = 40; i < 45; i++) s[i] = 0.5; // sum 2.5 beats the full chunks' 1.0
  const sets = selectChunkKV(input({ layers: 1, kvHeads: 1, rows, keep: 5 + 15, window: 5, positions: [[inOrder(rows)]], scores: [[s]] }));
  // chunk 4 (5 rows), then chunk 3 (ties go to the newer chunk), the window
  assert.deepEqual(Array.from(sets[0]![0]!), range(30, 50));
});

test('chunkkv: chunks follow position order when rows are shuffled', () => {
  const rng = makeRng(12);
  for (let trial = 0; trial < 20; trial++) {
    const rows = 30 + rng.int(200);
    const window = rng.int(20);
    const keep = window + rng.int(rows - window);
    const heads = 1 + rng.int(3);
    const scores = Array.from({ length: heads }, () => randomScores(rng, rows));
    const perm = Int32Array.from(shuffle(rng, Array.from(inOrder(rows))));
    const one = (pos: Int32Array, s: Float32Array[]) =>
      selectChunkKV(input({ layers: 1, kvHeads: heads, rows, keep, window, positions: [Array(heads).fill(pos)], scores: [s] }))[0]![0]!;
    const a = one(inOrder(rows), scores);
    const posShuffled = Int32Array.from(perm);
    const scoresShuffled = scores.map((s) => Float32Array.from(perm, (r) => s[r]!));
    const b = one(posShuffled, scoresShuffled);
    assert.deepEqual(sortedRows(Array.from(b, (r) => posShuffled[r]!)), Array.from(a));
  }
});

/** A plain ChunkKV: rank chunks by a sort, take whole ones, then the next one's best rows. */
function refChunk(pos: Int32Array, scores: Float32Array[], rows: number, keep: number, window: number, chunk: number): number[] {
  if (keep >= rows) return range(0, rows);
  const order = byPosition(pos, rows);
  const w = Math.min(window, keep);
  const rest = order.slice(0, rows - w);
  const vote = (r: number) => scores.reduce((a, s) => a + s[r]!, 0);
  const chunks = Array.from({ length: Math.ceil(rest.length / chunk) }, (_, c) => rest.slice(c * chunk, (c + 1) * chunk));
  const sums = chunks.map((c) => c.reduce((a, r) => a + vote(r), 0));
  const ranked = chunks.map((_, c) => c).sort((a, b) => sums[b]! - sums[a]! || b - a);
  const kept: number[] = order.slice(rows - w);
  let room = keep - w;
  for (const c of ranked) {
    if (room === 0) break;
    const take = chunks[c]!.length <= room ? chunks[c]! : rankRows(chunks[c]!, vote, pos).slice(0, room);
    kept.push(...take);
    room -= take.length;
  }
  return sortedRows(kept);
}

test('chunkkv: random layers with scattered positions against a reference', () => {
  const rng = makeRng(17);
  for (let trial = 0; trial < 40; trial++) {
    const layers = 1 + rng.int(3);
    const heads = 1 + rng.int(4);
    const rows = 2 + rng.int(300);
    const window = rng.int(40);
    const keep = rng.int(rows + 5);
    const chunk = [1, 3, 10, 16][rng.int(4)]!;
    const positions = grid<Int32Array>(layers, heads, () => new Int32Array(0));
    for (let l = 0; l < layers; l++) positions[l]!.fill(scattered(rng, rows));
    const scores = grid(layers, heads, () => randomScores(rng, rows));
    const sets = selectChunkKV(input({ layers, kvHeads: heads, rows, keep, window, positions, scores }), { chunk });
    checkShape(sets, layers, heads, rows, Math.min(keep, rows));
    for (let l = 0; l < layers; l++) {
      const want = refChunk(positions[l]![0]!, scores[l]!, rows, keep, window, chunk);
      for (let h = 0; h < heads; h++) assert.deepEqual(Array.from(sets[l]![h]!), want, `rows ${rows} keep ${keep} window ${window} chunk ${chunk}`);
    }
  }
});

test('chunkkv: reuseLayers shares one selection across each group of layers', () => {
  const rng = makeRng(30);
  const layers = 5;
  const rows = 120;
  const positions = grid(layers, 2, () => inOrder(rows));
  // every layer favours different chunks
  const scores = grid(layers, 2, () => randomScores(rng, rows));
  for (let l = 0; l < layers; l++) for (let i = 0; i < 10; i++) scores[l]![0]![l * 20 + i] = 10;
  const base = input({ layers, kvHeads: 2, rows, keep: 8 + 30, window: 8, positions, scores });
  const none = selectChunkKV(base);
  for (let l = 1; l < layers; l++) assert.notDeepEqual(none[l]![0], none[l - 1]![0], 'each layer its own');
  const pairs = selectChunkKV(base, { reuseLayers: 2 });
  checkShape(pairs, layers, 2, rows, 38);
  assert.deepEqual(pairs[0], none[0]);
  assert.deepEqual(pairs[1]![0], none[0]![0]);
  assert.deepEqual(pairs[2], none[2]);
  assert.deepEqual(pairs[3]![1], none[2]![0]);
  assert.deepEqual(pairs[4], none[4]);
  const triples = selectChunkKV(base, { reuseLayers: 3 });
  assert.deepEqual([1, 2, 3, 4].map((l) => Array.from(triples[l]![0]!)), [none[0], none[0], none[3], none[3]].map((s) => Array.from(s![0]!)));
  assert.throws(() => selectChunkKV(base, { reuseLayers: 0 }), /reuseLayers/);
});
