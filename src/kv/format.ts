// A KV format is a descriptor (DESIGN.md §8.4): how many bytes a row of K or V takes and how values are
// encoded into it and decoded from it. The managers size pages with rowBytes; the reference backend
// encodes and decodes with it exactly; the native kernels index a table by `id` (native/kv_format.h),
// which must list the formats in the same order.
import { KVError } from './errors.js';
import { f16Format } from './formats/f16.js';
import { f32Format } from './formats/f32.js';
import { q4_0Format } from './formats/q4_0.js';
import { q8_0Format } from './formats/q8_0.js';
import { kiviChannelFormat, kiviTokenFormat } from './formats/kivi.js';

/**
 * ggml's f32, f16, q8_0 and q4_0; and KIVI's asymmetric 2- and 4-bit formats: `kivi2c`/`kivi4c` quantize
 * each channel over a group of 32 tokens (KIVI's keys), `kivi2t`/`kivi4t` each token in groups of 32
 * channels (KIVI's values).
 */
export type KVFormatName = 'f32' | 'f16' | 'q8_0' | 'q4_0' | 'kivi2c' | 'kivi4c' | 'kivi2t' | 'kivi4t';

export interface KVFormat {
  readonly name: KVFormatName;
  /** Index in the native format table. */
  readonly id: number;
  /** Values encoded together: 1 for the float formats, 32 for ggml's block formats. */
  readonly blockValues: number;
  /** Bytes of one block, amortized over a group's rows for grouped formats. */
  readonly blockBytes: number;
  /**
   * Tokens encoded together: 1 (each row alone), or 32 for the per-channel formats, whose scales cover a
   * group of consecutive rows. A group's rows are always adjacent in the cache, `rowStride` bytes apart.
   */
  readonly groupTokens: number;
  /**
   * Encodes groupTokens rows of n values (a multiple of blockValues), src[srcAt ..] n apart, into the rows
   * at dst[dstAt], dst[dstAt + rowStride], ...
   */
  encode(src: Float32Array, srcAt: number, n: number, dst: Uint8Array, dstAt: number, rowStride: number): void;
  /**
   * Values first .. first + n - 1 of the row that starts at src[rowAt] (a row of rowValues values, row
   * indexInGroup of its group, rows rowStride apart), into out[outAt ..].
   */
  decode(src: Uint8Array, rowAt: number, first: number, n: number, out: Float32Array, outAt: number, rowValues: number, indexInGroup: number, rowStride: number): void;
}

/** The formats in native table order. */
export const KV_FORMATS: readonly KVFormat[] = [
  f32Format, f16Format, q8_0Format, q4_0Format, kiviChannelFormat('kivi2c', 4, 2), kiviChannelFormat('kivi4c', 5, 4),
  kiviTokenFormat('kivi2t', 6, 2), kiviTokenFormat('kivi4t', 7, 4),
];
export const KV_FORMAT_NAMES: readonly KVFormatName[] = KV_FORMATS.map((f) => f.name);
export const DEFAULT_KV_FORMAT: KVFormatName = 'f16';

/** The format of K and of V, chosen separately as in llama.cpp. */
export interface KVType {
  k: KVFormatName;
  v: KVFormatName;
}

export const DEFAULT_KV_TYPE: KVType = { k: DEFAULT_KV_FORMAT, v: DEFAULT_KV_FORMAT };

/** KIVI as its paper sets it up: keys per channel, values per token, at 2 or 4 bits. */
export const KIVI_TYPES = {
  kivi2: { k: 'kivi2c', v: 'kivi2t' },
  kivi4: { k: 'kivi4c', v: 'kivi4t' },
} as const satisfies Record<string, KVType>;
export type KIVIName = keyof typeof KIVI_TYPES;

/** Tokens KIVI keeps in f16 at the end of a sequence, by default (a multiple of 32). */
export const DEFAULT_KIVI_RESIDUAL = 128;

/** Whether a type has a KIVI format, whose caches keep a residual window of f16 tokens by default. */
export function isKIVIType(type: KVType): boolean {
  return type.k.startsWith('kivi') || type.v.startsWith('kivi');
}

export function isKVFormatName(name: unknown): name is KVFormatName {
  return typeof name === 'string' && (KV_FORMAT_NAMES as readonly string[]).includes(name);
}

/** The descriptor of a format name; an unknown name is an error that lists the choices. */
export function kvFormat(name: string, what = 'KV cache type'): KVFormat {
  const f = KV_FORMATS.find((x) => x.name === name);
  if (!f) throw new KVError('ERR_KV_INVALID_ARGUMENT', `unknown ${what} "${name}"; choose one of ${KV_FORMAT_NAMES.join(', ')}`);
  return f;
}

/** Bytes of a row of `values` values (kvHeads x headDim) in format f. */
export function rowBytesOf(f: KVFormat, values: number): number {
  return (values / f.blockValues) * f.blockBytes;
}

/**
 * Bytes of one KV head's slice of a row in format f (head h is bytes [h x slice, (h + 1) x slice) of the
 * row), or undefined when heads do not split the row: blocks straddling heads, or rows encoded in groups.
 */
export function headSliceBytes(f: KVFormat, headDim: number): number | undefined {
  if (f.groupTokens !== 1 || headDim % f.blockValues !== 0) return undefined;
  return rowBytesOf(f, headDim);
}

/** Whether a row of kvHeads x headDim values is whole blocks of f. */
export function rowFits(f: KVFormat, kvHeads: number, headDim: number): boolean {
  return (kvHeads * headDim) % f.blockValues === 0;
}

/** Throws, naming the model's row and the formats that fit it, when a chosen format cannot hold the row. */
export function checkRowFits(type: KVType, kvHeads: number, headDim: number): void {
  for (const [side, name] of [['K', type.k], ['V', type.v]] as const) {
    const f = kvFormat(name);
    if (!rowFits(f, kvHeads, headDim)) {
      const fitting = KV_FORMATS.filter((x) => rowFits(x, kvHeads, headDim)).map((x) => x.name);
      throw new KVError('ERR_KV_INVALID_ARGUMENT',
        `the ${side} cache type ${name} stores blocks of ${f.blockValues} values along a row, and this model's KV row is ` +
        `${kvHeads} x ${headDim} = ${kvHeads * headDim} values (not a multiple of ${f.blockValues}); types that fit: ${fitting.join(', ')}`);
    }
  }
}

/** "f16", "kivi2", or "q8_0/q4_0" when K and V differ. */
export function kvTypeLabel(type: KVType): string {
  const kivi = (Object.keys(KIVI_TYPES) as KIVIName[]).find((n) => KIVI_TYPES[n].k === type.k && KIVI_TYPES[n].v === type.v);
  return kivi ?? (type.k === type.v ? type.k : `${type.k}/${type.v}`);
}

/** Tokens encoded together by K's and V's formats: the larger. */
export function groupTokensOf(type: KVType): number {
  return Math.max(kvFormat(type.k).groupTokens, kvFormat(type.v).groupTokens);
}
