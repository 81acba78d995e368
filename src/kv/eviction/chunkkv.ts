// ChunkKV: tokens carry meaning in runs, so keep whole chunks of consecutive tokens rather than scattered
// ones; SnapKV's observation window votes, summed per chunk. The kept indices of adjacent layers are much
// alike, so a group of layers may share one selection (layer-wise index reuse).
import {
  checkInput,
  intOption,
  rowPositions,
  rowScores,
  type EvictionInput,
  type EvictionOptions,
  type KeepSets,
} from './policy.js';
import { allRows, ascendingSet, finite, orderByPosition, selectBest, uniformSets } from './select.js';

/** ChunkKV's default chunk size. */
export const CHUNK_TOKENS = 10;

/**
 * Per layer: the min(window, keep) newest rows, then whole chunks of `chunk` consecutive non-window rows (in
 * position order) by the sum of their rows' votes over every KV head of the layer, best first, ties to the
 * newer chunk. When the next chunk no longer fits, its best rows fill the count exactly. Every head of a
 * layer keeps the same rows (positions read from head 0); with reuseLayers R, layer l takes the selection
 * of layer l - l % R.
 */
export function selectChunkKV(input: EvictionInput, opts: EvictionOptions = {}): KeepSets {
  checkInput(input);
  const chunk = intOption('chunk', opts.chunk, CHUNK_TOKENS);
  const reuse = intOption('reuseLayers', opts.reuseLayers, 1);
  const { layers, kvHeads, rows, keep } = input;
  if (keep >= rows) return uniformSets(layers, kvHeads, allRows(rows));
  const order = new Int32Array(rows);
  const tmp = new Int32Array(rows);
  const vote = new Float64Array(rows);
  const w = Math.min(input.window, keep);
  const n = rows - w;
  const chunks = Math.ceil(n / chunk);
  const chunkScore = new Float64Array(chunks);
  const rank = new Int32Array(chunks);
  const out: KeepSets = [];
  let set: Int32Array = new Int32Array(0);
  for (let l = 0; l < layers; l++) {
    if (l % reuse === 0) set = selectLayer(l);
    out.push(new Array<Int32Array>(kvHeads).fill(set));
  }
  return out;

  function selectLayer(layer: number): Int32Array {
    const pos = rowPositions(input, layer, 0);
    orderByPosition(pos, rows, order, tmp);
    vote.fill(0);
    for (let h = 0; h < kvHeads; h++) {
      const s = rowScores(input, layer, h);
      for (let r = 0; r < rows; r++) vote[r] += s[r]!;
    }
    for (let r = 0; r < rows; r++) vote[r] = finite(vote[r]!);
    chunkScore.fill(0);
    for (let i = 0; i < n; i++) chunkScore[(i / chunk) | 0] += vote[order[i]!]!;
    for (let c = 0; c < chunks; c++) rank[c] = c;
    rank.sort((a, b) => chunkScore[b]! - chunkScore[a]! || b - a);
    const result = new Int32Array(keep);
    let filled = 0;
    const budget = keep - w;
    for (let j = 0; j < chunks && filled < budget; j++) {
      const start = rank[j]! * chunk;
      const size = Math.min(chunk, n - start);
      const room = budget - filled;
      if (size <= room) {
        result.set(order.subarray(start, start + size), filled);
        filled += size;
      } else {
        // the remainder: this chunk's best rows
        const part = order.slice(start, start + size);
        selectBest(part, 0, size, room, vote, pos);
        result.set(part.subarray(0, room), filled);
        filled += room;
      }
    }
    result.set(order.subarray(n, rows), filled);
    return ascendingSet(rows, result, 0, keep);
  }
}
