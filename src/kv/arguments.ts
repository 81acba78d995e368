// Argument checks shared by the TypeScript managers (the native manager repeats them in C++).
import { KVError } from './errors.js';
import type { KeepPositions, SeqLens } from './manager.js';

export function checkSlotIndex(slot: number, maxSlots: number): void {
  if (!Number.isInteger(slot) || slot < 0 || slot >= maxSlots) {
    throw new KVError('ERR_KV_UNKNOWN_SLOT', `unknown slot ${slot}: slots are 0..${maxSlots - 1}`);
  }
}

export function checkTokenCount(what: string, tokens: number, maxContext: number): void {
  if (!Number.isInteger(tokens) || tokens < 0) {
    throw new KVError('ERR_KV_INVALID_ARGUMENT', `${what}: token count must be a non-negative integer, got ${tokens}`);
  }
  if (tokens > maxContext) {
    throw new KVError('ERR_KV_CONTEXT_OVERFLOW', `${what}: ${tokens} tokens are past maxContext ${maxContext}`);
  }
}

/** Copies seqLens into an Int32Array of at most maxSlots entries (reusing `scratch`). */
export function toSeqLensArray(seqLens: SeqLens, maxSlots: number, scratch: Int32Array): Int32Array {
  if (seqLens.length > maxSlots) {
    throw new KVError('ERR_KV_INVALID_ARGUMENT', `step: seqLens has ${seqLens.length} entries but there are ${maxSlots} slots`);
  }
  if (seqLens instanceof Int32Array) return seqLens;
  scratch.fill(0);
  for (let s = 0; s < seqLens.length; s++) {
    const len = seqLens[s]!;
    if (!Number.isInteger(len) || len > 0x7fffffff) {
      throw new KVError('ERR_KV_INVALID_ARGUMENT', `step: seqLens[${s}] must be an integer, got ${len}`);
    }
    scratch[s] = len;
  }
  return scratch.subarray(0, seqLens.length);
}

/**
 * Keep lists flattened the way the native manager takes them: `kept` positions per list, lists in
 * [layer][head] order. `per` says what one list covers: every layer ('all'), one layer, or one KV head
 * of one layer.
 */
export interface FlatKeep {
  flat: Int32Array;
  kept: number;
  per: 'all' | 'layer' | 'head';
}

/** The shape facts compaction needs: how many layers and KV heads the lists may cover. */
export interface KeepShape {
  layers: number;
  kvHeads: number;
}

/** Checks the nesting and lengths of a keep argument (not its positions) and flattens it. */
export function flattenKeep(keep: KeepPositions, shape: KeepShape): FlatKeep {
  if (keep instanceof Int32Array) return { flat: keep, kept: keep.length, per: 'all' };
  if (!Array.isArray(keep)) {
    throw new KVError('ERR_KV_INVALID_ARGUMENT', 'compact: keep must be an Int32Array, or an array of them per layer, or per layer and KV head');
  }
  if (keep.length !== shape.layers) {
    throw new KVError('ERR_KV_INVALID_ARGUMENT', `compact: got ${keep.length} keep lists for ${shape.layers} layers`);
  }
  const perHead = !(keep[0] instanceof Int32Array);
  const lists: Int32Array[] = [];
  const names: string[] = [];
  keep.forEach((entry: Int32Array | readonly Int32Array[], layer) => {
    if (entry instanceof Int32Array) {
      if (perHead) throw mixedNesting();
      lists.push(entry);
      names.push(`keep[${layer}]`);
      return;
    }
    if (!perHead || !Array.isArray(entry)) throw mixedNesting();
    if (entry.length !== shape.kvHeads) {
      throw new KVError('ERR_KV_INVALID_ARGUMENT', `compact: keep[${layer}] has ${entry.length} lists for ${shape.kvHeads} KV heads`);
    }
    entry.forEach((list, head) => {
      if (!(list instanceof Int32Array)) throw new KVError('ERR_KV_INVALID_ARGUMENT', `compact: keep[${layer}][${head}] must be an Int32Array`);
      lists.push(list);
      names.push(`keep[${layer}][${head}]`);
    });
  });
  const kept = lists[0]?.length ?? 0;
  const flat = new Int32Array(kept * lists.length);
  lists.forEach((list, i) => {
    if (list.length !== kept) {
      throw new KVError('ERR_KV_INVALID_ARGUMENT',
        `compact: every keep list must keep the same number of tokens (${names[0]} keeps ${kept}, ${names[i]} keeps ${list.length})`);
    }
    flat.set(list, i * kept);
  });
  return { flat, kept, per: perHead ? 'head' : 'layer' };
}

function mixedNesting(): KVError {
  return new KVError('ERR_KV_INVALID_ARGUMENT', 'compact: keep lists must be all per layer (Int32Array) or all per layer and KV head (arrays of Int32Array)');
}

/** The keep list of (layer, head), whatever the lists cover. */
export function keepList(keep: FlatKeep, layer: number, head: number, kvHeads: number): Int32Array {
  const index = keep.per === 'all' ? 0 : keep.per === 'layer' ? layer : layer * kvHeads + head;
  return keep.flat.subarray(index * keep.kept, (index + 1) * keep.kept);
}

/**
 * Validates every list for a slot of `tokens` tokens: entries distinct (but keep[i] = i may repeat a row
 * an earlier entry copied: it moves nothing), within [0, tokens), and
 * keep[i] >= i (each kept row stays or moves toward the front, so moving rows in index order never
 * overwrites a row still to be read). The native manager checks the same, with the same messages.
 */
export function checkKeep(keep: FlatKeep, kvHeads: number, slot: number, tokens: number): void {
  if (keep.kept > tokens) {
    throw new KVError('ERR_KV_INVALID_ARGUMENT', `compact: cannot keep ${keep.kept} tokens of slot ${slot}, which holds ${tokens}`);
  }
  const seen = new Int32Array(tokens).fill(-1);
  const count = keep.kept === 0 ? 0 : keep.flat.length / keep.kept;
  for (let l = 0; l < count; l++) {
    const list = keep.flat.subarray(l * keep.kept, (l + 1) * keep.kept);
    const name = keep.per === 'all' ? 'keep' : keep.per === 'layer' ? `keep[${l}]` : `keep[${Math.floor(l / kvHeads)}][${l % kvHeads}]`;
    for (let i = 0; i < list.length; i++) {
      const p = list[i]!;
      if (p < 0 || p >= tokens) {
        throw new KVError('ERR_KV_INVALID_ARGUMENT', `compact: ${name}[${i}] = ${p} is outside the slot's ${tokens} tokens`);
      }
      if (p < i) {
        throw new KVError('ERR_KV_INVALID_ARGUMENT', `compact: ${name}[${i}] = ${p} would move a row back (keep[i] must be >= i)`);
      }
      if (seen[p] !== -1 && p !== i) {
        throw new KVError('ERR_KV_INVALID_ARGUMENT', `compact: ${name} keeps position ${p} twice (entries ${seen[p]} and ${i})`);
      }
      seen[p] = i;
    }
    for (let i = 0; i < list.length; i++) seen[list[i]!] = -1;
  }
}
