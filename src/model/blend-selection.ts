// CacheBlend's selective recompute, as the forward pass runs it. Reused document tokens (their K/V were
// placed in the cache from the chunk store) go through the first layers like any token, which rewrites
// their K/V there; on the selection layer each token's new key is compared with the reused one it
// overwrote, and only the share of each group whose keys moved most stays in the batch for the layers after
// it. The others keep their reused K/V in those layers. A group whose share is 0 leaves the batch before
// the first layer (its K/V is reused as it is); a share of 1 keeps every token (a full prefill).
//
// Gradual filtering (CacheBlend's option) selects on several consecutive layers: with S stages at share r,
// stage j keeps min(1, r x (S - j)) of a group's tokens, chosen among those the stage before kept, so the
// last stage keeps r and each narrowing sees a deeper layer's deviation.
import type { KVView } from '../backend/backend.js';
import { kvRowOffset } from '../backend/kv-rows.js';
import type { Batch, BatchBlend } from './batch.js';

/** The batch tokens of the blend's groups (group >= 0), optionally only those of groups with a share in (0, 1). */
export function blendCandidates(blend: BatchBlend, partialOnly: boolean): Int32Array {
  const picked: number[] = [];
  blend.groups.forEach((g, i) => {
    if (g < 0) return;
    const share = blend.shares[g]!;
    if (!partialOnly || (share > 0 && share < 1)) picked.push(i);
  });
  return Int32Array.from(picked);
}

/** The batch tokens that stay when the groups with share 0 leave (before the first layer). */
export function withoutReusedGroups(blend: BatchBlend): Int32Array {
  const keep: number[] = [];
  blend.groups.forEach((g, i) => {
    if (g < 0 || blend.shares[g]! > 0) keep.push(i);
  });
  return Int32Array.from(keep);
}

/** The keys the cache holds for batch tokens `picks` in `layer`, decoded: [picks.length][kvHeads * headDim]. */
export function cachedKeys(kv: KVView, layer: number, batch: Batch, picks: Int32Array): Float32Array {
  const row = kv.kvHeads * kv.headDim;
  const out = new Float32Array(picks.length * row);
  const keys = kv.keys(layer);
  const rows = batch.rows ?? batch.positions;
  const format = kv.keyFormat;
  picks.forEach((i, j) => {
    const r = rows[i]!;
    format.decode(keys, kvRowOffset(kv, batch.slots[i]!, r), 0, row, out, j * row, row, r % format.groupTokens, kv.rowBytes);
  });
  return out;
}

/**
 * The batch tokens that stay past a selection layer: every token outside the groups, and per group the
 * `kept(group, size)` tokens whose keys moved most between `before` and `after` (rows of `picks`).
 */
export function selectRecomputed(blend: BatchBlend, n: number, picks: Int32Array, before: Float32Array, after: Float32Array, kept: (group: number, size: number) => number): Int32Array {
  const row = picks.length === 0 ? 0 : before.length / picks.length;
  const byGroup = new Map<number, { token: number; deviation: number }[]>();
  picks.forEach((i, j) => {
    let d = 0;
    for (let c = j * row; c < (j + 1) * row; c++) d += (after[c]! - before[c]!) ** 2;
    const g = blend.groups[i]!;
    let list = byGroup.get(g);
    if (!list) byGroup.set(g, (list = []));
    list.push({ token: i, deviation: d });
  });
  const dropped = new Uint8Array(n);
  for (const [g, list] of byGroup) {
    list.sort((a, b) => b.deviation - a.deviation);
    for (const { token } of list.slice(kept(g, list.length))) dropped[token] = 1;
  }
  const keep: number[] = [];
  for (let i = 0; i < n; i++) if (!dropped[i]) keep.push(i);
  return Int32Array.from(keep);
}

/**
 * One forward pass's selection: call before() and after() around every layer; after() returns the batch
 * tokens to keep when the pass narrows at that layer.
 */
export class BlendSelectionPass {
  private readonly first: number;
  private readonly stages: number;
  /** Per group: its tokens when the pass began (the shares are of these). */
  private readonly sizes = new Map<number, number>();
  private candidates: Int32Array = new Int32Array(0);
  private keysBefore: Float32Array | undefined;

  constructor(private readonly blend: BatchBlend, layers: number) {
    this.first = Math.min(blend.layer, layers - 1);
    this.stages = Math.max(1, Math.min(blend.stages ?? 1, layers - this.first));
    for (const g of blend.groups) if (g >= 0) this.sizes.set(g, (this.sizes.get(g) ?? 0) + 1);
  }

  before(layer: number, kv: KVView, batch: Batch): void {
    if (!this.selects(layer)) return;
    this.candidates = blendCandidates(batch.blend!, true);
    this.keysBefore = this.candidates.length > 0 ? cachedKeys(kv, layer, batch, this.candidates) : undefined;
  }

  after(layer: number, kv: KVView, batch: Batch): Int32Array | undefined {
    if (!this.selects(layer) || !this.keysBefore) return undefined;
    const stage = layer - this.first;
    const kept = (g: number, size: number) => Math.min(size, Math.ceil(Math.min(1, this.blend.shares[g]! * (this.stages - stage)) * this.sizes.get(g)!));
    const keep = selectRecomputed(batch.blend!, batch.tokens.length, this.candidates, this.keysBefore, cachedKeys(kv, layer, batch, this.candidates), kept);
    this.keysBefore = undefined;
    return keep;
  }

  /** Group tokens still in `batch` (run after the last layer: those recomputed in every layer). */
  static recomputed(batch: Batch): number {
    return batch.blend ? blendCandidates(batch.blend, false).length : 0;
  }

  private selects(layer: number): boolean {
    return layer >= this.first && layer < this.first + this.stages;
  }
}
