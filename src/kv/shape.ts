// The shape every KV manager is built for, and the byte arithmetic shared by all of them: a token's K (or
// V) in one layer is one row of kvHeads x headDim values in the cache's format, and pages hold whole rows.
import { checkRowFits, DEFAULT_KIVI_RESIDUAL, DEFAULT_KV_TYPE, groupTokensOf, headSliceBytes, isKIVIType, kvFormat, rowBytesOf, type KVFormat, type KVType } from './format.js';
import { KVError } from './errors.js';

export interface KVShape {
  layers: number;
  kvHeads: number;
  headDim: number;
  maxSlots: number;
  maxContext: number;
  /** Formats of K and V (default f16 for both). */
  type?: KVType;
  /**
   * Newest tokens kept in f16 before they are encoded (KIVI's residual; a multiple of 32). Default:
   * 128 for the KIVI formats, 0 otherwise.
   */
  residual?: number;
  /**
   * Store K and V rotated by a Walsh-Hadamard transform per head. Default: on where K or V is q8_0 or
   * q4_0 (it lowers their error: bench/README.md, kv-quality), off for f32/f16 (nothing to gain) and KIVI
   * (its per-channel keys lose their outlier channels).
   */
  rotate?: boolean;
}

/** The residual window (KVShape.residual) comes in multiples of this many tokens: KIVI's group. */
const RESIDUAL_GRANULE = 32;

export interface ResolvedKVShape extends Required<KVShape> {
  keyFormat: KVFormat;
  valueFormat: KVFormat;
}

export function resolveShape(shape: KVShape): ResolvedKVShape {
  if ('elemSize' in shape) throw new KVError('ERR_KV_INVALID_ARGUMENT', 'elemSize is gone: choose the KV formats with type: { k, v }');
  const type = shape.type ?? DEFAULT_KV_TYPE;
  checkRowFits(type, shape.kvHeads, shape.headDim);
  const residual = shape.residual ?? (isKIVIType(type) ? DEFAULT_KIVI_RESIDUAL : 0);
  // Whole groups of the per-channel formats, whatever K's and V's formats are.
  if (!(Number.isInteger(residual) && residual >= 0 && residual % RESIDUAL_GRANULE === 0)) {
    throw new KVError('ERR_KV_INVALID_ARGUMENT', `the residual window must be a multiple of ${RESIDUAL_GRANULE} tokens, got ${residual}`);
  }
  return { ...shape, type, residual, rotate: shape.rotate ?? rotatesByDefault(type), keyFormat: kvFormat(type.k), valueFormat: kvFormat(type.v) };
}

/**
 * Bytes of one token's row of K (or V) in one layer: the row stride of every cache. When K and V have
 * different formats both use the larger row, so that a page holds the same tokens in every range.
 */
export function tokenBytes(shape: ResolvedKVShape): number {
  const values = shape.kvHeads * shape.headDim;
  return Math.max(rowBytesOf(shape.keyFormat, values), rowBytesOf(shape.valueFormat, values));
}

/** Bytes of one KV head's slice of a K row and of a V row; throws when a format's rows do not split by head. */
/** Whether each KV head's slice of a row can move on its own (per-head keep lists; see headSlices). */
export function splitsByHead(shape: ResolvedKVShape): boolean {
  return headSliceBytes(shape.keyFormat, shape.headDim) !== undefined && headSliceBytes(shape.valueFormat, shape.headDim) !== undefined;
}

export function headSlices(shape: ResolvedKVShape): { key: number; value: number } {
  const key = headSliceBytes(shape.keyFormat, shape.headDim);
  const value = headSliceBytes(shape.valueFormat, shape.headDim);
  if (key === undefined || value === undefined) {
    const f = key === undefined ? shape.keyFormat : shape.valueFormat;
    throw new KVError('ERR_KV_INVALID_ARGUMENT',
      `compact: per-head keep lists need rows that split by KV head, but the ${key === undefined ? 'K' : 'V'} format ${f.name} ` +
      (f.groupTokens !== 1 ? `encodes ${f.groupTokens} rows together` : `stores blocks of ${f.blockValues} values across heads of ${shape.headDim}`) +
      '; keep one list per layer instead');
  }
  return { key, value };
}

/** Bytes one token occupies in the whole cache (every layer's K and V), which is what capacity depends on. */
export function bytesPerToken(shape: ResolvedKVShape): number {
  return tokenBytes(shape) * rangeCount(shape);
}

/** Whether a cache of this type stores K and V rotated unless told otherwise (see KVShape.rotate). */
export function rotatesByDefault(type: KVType): boolean {
  const block = (f: string) => f === 'q8_0' || f === 'q4_0';
  return !isKIVIType(type) && (block(type.k) || block(type.v));
}

/** Tokens the formats encode together: pages and blocks hold whole groups of them. */
export function groupTokens(shape: ResolvedKVShape): number {
  return groupTokensOf(shape.type);
}

/** Whether the cache keeps a residual window of f16 rows (a residual, or formats that encode groups). */
export function needsResidual(shape: ResolvedKVShape): boolean {
  return shape.residual > 0 || groupTokens(shape) > 1;
}

/** (layer, K/V) pairs: every one is a separate range/array with its own pages. */
export function rangeCount(shape: ResolvedKVShape): number {
  return shape.layers * 2;
}
