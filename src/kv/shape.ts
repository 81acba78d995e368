// The shape every KV manager is built for, and the byte arithmetic shared by all of them.

export interface KVShape {
  layers: number;
  kvHeads: number;
  headDim: number;
  maxSlots: number;
  /** Most tokens one slot may hold. */
  maxContext: number;
  /** Bytes per K/V element: 4 = f32 (the only type the Float32Array views serve today). */
  elemSize?: number;
}

export type ResolvedKVShape = Required<KVShape>;

export function resolveShape(shape: KVShape): ResolvedKVShape {
  return { ...shape, elemSize: shape.elemSize ?? 4 };
}

/** Bytes of one token's K (or V) in one layer: kvHeads x headDim x elemSize. */
export function tokenBytes(shape: ResolvedKVShape): number {
  return shape.kvHeads * shape.headDim * shape.elemSize;
}

/** (layer, K/V) pairs: every one is a separate range/array with its own pages. */
export function rangeCount(shape: ResolvedKVShape): number {
  return shape.layers * 2;
}
