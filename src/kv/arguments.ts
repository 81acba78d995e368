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

/** Keep positions as one flat Int32Array: `kept` positions, repeated per layer when perLayer. */
export interface FlatKeep {
  flat: Int32Array;
  kept: number;
  perLayer: boolean;
}

export function flattenKeep(keep: KeepPositions, layers: number): FlatKeep {
  if (keep instanceof Int32Array) return { flat: keep, kept: keep.length, perLayer: false };
  if (keep.length !== layers) {
    throw new KVError('ERR_KV_INVALID_ARGUMENT', `compact: got ${keep.length} keep lists for ${layers} layers`);
  }
  const kept = keep[0]?.length ?? 0;
  const flat = new Int32Array(kept * layers);
  keep.forEach((list, layer) => {
    if (list.length !== kept) {
      throw new KVError('ERR_KV_INVALID_ARGUMENT', 'compact: every layer must keep the same number of tokens');
    }
    flat.set(list, layer * kept);
  });
  return { flat, kept, perLayer: layers > 1 };
}

/** The keep list of one layer; validates that it ascends and stays below `tokens`. */
export function layerKeep(keep: FlatKeep, layer: number, tokens: number): Int32Array {
  const list = keep.perLayer ? keep.flat.subarray(layer * keep.kept, (layer + 1) * keep.kept) : keep.flat;
  for (let i = 0; i < list.length; i++) {
    if (list[i]! < 0 || list[i]! >= tokens || (i > 0 && list[i]! <= list[i - 1]!)) {
      throw new KVError('ERR_KV_INVALID_ARGUMENT', `compact: keep positions must be ascending and below ${tokens} (bad entry ${i})`);
    }
  }
  return list;
}
