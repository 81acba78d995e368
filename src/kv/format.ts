// A KV format is a descriptor (DESIGN.md §8.4): how many bytes a row of K or V takes and how values are
// encoded into it and decoded from it. The managers size pages with rowBytes; the reference backend
// encodes and decodes with it exactly; the native kernels index a table by `id` (native/kv_format.h),
// which must list the formats in the same order.
import { KVError } from './errors.js';
import { f16Format } from './formats/f16.js';
import { f32Format } from './formats/f32.js';
import { q4_0Format } from './formats/q4_0.js';
import { q8_0Format } from './formats/q8_0.js';

export type KVFormatName = 'f32' | 'f16' | 'q8_0' | 'q4_0';

export interface KVFormat {
  readonly name: KVFormatName;
  /** Index in the native format table. */
  readonly id: number;
  /** Values encoded together: 1 for the float formats, 32 for ggml's block formats. */
  readonly blockValues: number;
  /** Bytes of one block. */
  readonly blockBytes: number;
  /** Writes src[srcAt .. srcAt + n) (n a multiple of blockValues) as n / blockValues blocks at dst[dstAt]. */
  encode(src: Float32Array, srcAt: number, n: number, dst: Uint8Array, dstAt: number): void;
  /** Values first .. first + n - 1 of the row that starts at src[rowAt], into out[outAt ..]. */
  decode(src: Uint8Array, rowAt: number, first: number, n: number, out: Float32Array, outAt: number): void;
}

/** The formats in native table order. */
export const KV_FORMATS: readonly KVFormat[] = [f32Format, f16Format, q8_0Format, q4_0Format];
export const KV_FORMAT_NAMES: readonly KVFormatName[] = KV_FORMATS.map((f) => f.name);
export const DEFAULT_KV_FORMAT: KVFormatName = 'f16';

/** The format of K and of V, chosen separately as in llama.cpp. */
export interface KVType {
  k: KVFormatName;
  v: KVFormatName;
}

export const DEFAULT_KV_TYPE: KVType = { k: DEFAULT_KV_FORMAT, v: DEFAULT_KV_FORMAT };

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

/** "f16", or "q8_0/q4_0" when K and V differ. */
export function kvTypeLabel(type: KVType): string {
  return type.k === type.v ? type.k : `${type.k}/${type.v}`;
}
