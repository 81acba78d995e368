// GGUF writer (version 3): metadata of every value type, tensor infos and aligned tensor data.
// The header is built in memory; tensor data is streamed, so multi-GB files never sit in memory.
// Layout per the GGUF specification: magic, version, tensor count, metadata count (u64s), the
// metadata pairs, the tensor infos, padding to `general.alignment`, then each tensor's data at an
// offset (relative to the data section) that is itself a multiple of the alignment.
import { closeSync, openSync, writeSync } from 'node:fs';
import { GGUFError } from './errors.js';
import { GGMLType, GGUFValueType, typeName, typeTraits, type GGUFValue } from './types.js';

const MAGIC = 0x46554747; // "GGUF" little-endian
const VERSION = 3;
const DEFAULT_ALIGNMENT = 32;

type NumericType =
  | GGUFValueType.UINT8 | GGUFValueType.INT8 | GGUFValueType.UINT16 | GGUFValueType.INT16
  | GGUFValueType.UINT32 | GGUFValueType.INT32 | GGUFValueType.FLOAT32
  | GGUFValueType.UINT64 | GGUFValueType.INT64 | GGUFValueType.FLOAT64;

/** A metadata value together with the GGUF type it is written as (JS numbers alone do not say). */
export type TypedValue =
  | { type: NumericType; value: number | bigint }
  | { type: GGUFValueType.BOOL; value: boolean }
  | { type: GGUFValueType.STRING; value: string }
  | { type: GGUFValueType.ARRAY; elemType: Exclude<GGUFValueType, GGUFValueType.ARRAY>; value: ArrayLike<number | bigint | boolean | string> }
  | { type: GGUFValueType.ARRAY; elemType: GGUFValueType.ARRAY; value: readonly TypedValue[] };

export interface TensorPlan {
  readonly name: string;
  /** ggml order: dims[0] is the contiguous (row) dimension. */
  readonly dims: readonly number[];
  readonly type: GGMLType;
  /** Offset relative to the start of the data section (set when the tensor is added). */
  readonly offset: number;
  readonly nBytes: number;
}

/**
 * The type a value read by the GGUF reader most likely had: typed arrays keep their element type;
 * a plain integer becomes UINT32 when it fits (GGUF's usual type for counts and token ids), else INT32
 * or a 64-bit type; any other number FLOAT32. Pass an explicit TypedValue where that guess is wrong.
 */
export function inferTyped(v: GGUFValue): TypedValue {
  if (typeof v === 'string') return { type: GGUFValueType.STRING, value: v };
  if (typeof v === 'boolean') return { type: GGUFValueType.BOOL, value: v };
  if (typeof v === 'bigint') return { type: v < 0n ? GGUFValueType.INT64 : GGUFValueType.UINT64, value: v };
  if (typeof v === 'number') {
    if (!Number.isInteger(v)) return { type: GGUFValueType.FLOAT32, value: v };
    if (v >= 0) return { type: v <= 0xffffffff ? GGUFValueType.UINT32 : GGUFValueType.UINT64, value: v };
    return { type: v >= -0x80000000 ? GGUFValueType.INT32 : GGUFValueType.INT64, value: v };
  }
  const elem = (elemType: Exclude<GGUFValueType, GGUFValueType.ARRAY>) =>
    ({ type: GGUFValueType.ARRAY, elemType, value: v as ArrayLike<number> }) as TypedValue;
  if (v instanceof Uint8Array) return elem(GGUFValueType.UINT8);
  if (v instanceof Int8Array) return elem(GGUFValueType.INT8);
  if (v instanceof Uint16Array) return elem(GGUFValueType.UINT16);
  if (v instanceof Int16Array) return elem(GGUFValueType.INT16);
  if (v instanceof Uint32Array) return elem(GGUFValueType.UINT32);
  if (v instanceof Int32Array) return elem(GGUFValueType.INT32);
  if (v instanceof Float32Array) return elem(GGUFValueType.FLOAT32);
  if (v instanceof Float64Array) return elem(GGUFValueType.FLOAT64);
  if (v instanceof BigUint64Array) return elem(GGUFValueType.UINT64);
  if (v instanceof BigInt64Array) return elem(GGUFValueType.INT64);
  // Plain arrays: the reader produces string[], boolean[] or nested arrays; an empty one is taken as strings.
  const first = v[0];
  if (first === undefined || typeof first === 'string') return elem(GGUFValueType.STRING);
  if (typeof first === 'boolean') return elem(GGUFValueType.BOOL);
  return { type: GGUFValueType.ARRAY, elemType: GGUFValueType.ARRAY, value: (v as GGUFValue[]).map(inferTyped) };
}

/** Growable little-endian byte buffer for the header. */
class ByteSink {
  private buf = new Uint8Array(1 << 16);
  private view = new DataView(this.buf.buffer);
  length = 0;
  private readonly encoder = new TextEncoder();

  private reserve(n: number): number {
    if (this.length + n > this.buf.length) {
      let size = this.buf.length * 2;
      while (size < this.length + n) size *= 2;
      const next = new Uint8Array(size);
      next.set(this.buf.subarray(0, this.length));
      this.buf = next;
      this.view = new DataView(next.buffer);
    }
    const at = this.length;
    this.length += n;
    return at;
  }
  // Each setter reserves first, then reads this.view: reserve() may replace the buffer and its view.
  u32(v: number): void {
    const at = this.reserve(4);
    this.view.setUint32(at, v, true);
  }
  u64(v: number | bigint): void {
    const at = this.reserve(8);
    this.view.setBigUint64(at, BigInt(v), true);
  }
  bytes(b: Uint8Array): void {
    const at = this.reserve(b.length);
    this.buf.set(b, at);
  }
  string(s: string): void {
    const b = this.encoder.encode(s);
    this.u64(b.length);
    this.bytes(b);
  }
  zeros(n: number): void { this.reserve(n); /* never-written bytes are zero */ }
  scalar(type: GGUFValueType, v: number | bigint | boolean, what: string): void {
    const size = SCALAR_SIZE[type];
    if (size === undefined) throw new GGUFError(`${what}: type ${type} is not a scalar type`);
    const at = this.reserve(size);
    const view = this.view;
    switch (type) {
      case GGUFValueType.UINT8: return view.setUint8(at, checkInt(v, 0, 0xff, what));
      case GGUFValueType.INT8: return view.setInt8(at, checkInt(v, -0x80, 0x7f, what));
      case GGUFValueType.UINT16: return view.setUint16(at, checkInt(v, 0, 0xffff, what), true);
      case GGUFValueType.INT16: return view.setInt16(at, checkInt(v, -0x8000, 0x7fff, what), true);
      case GGUFValueType.UINT32: return view.setUint32(at, checkInt(v, 0, 0xffffffff, what), true);
      case GGUFValueType.INT32: return view.setInt32(at, checkInt(v, -0x80000000, 0x7fffffff, what), true);
      case GGUFValueType.FLOAT32: return view.setFloat32(at, Number(v), true);
      case GGUFValueType.FLOAT64: return view.setFloat64(at, Number(v), true);
      case GGUFValueType.UINT64: return view.setBigUint64(at, BigInt(v), true);
      case GGUFValueType.INT64: return view.setBigInt64(at, BigInt(v), true);
      case GGUFValueType.BOOL: return view.setUint8(at, v ? 1 : 0);
    }
  }
  value(tv: TypedValue, what: string): void {
    this.u32(tv.type);
    this.payload(tv, what);
  }
  /** A value without its leading type tag (array elements carry no tag of their own). */
  private payload(tv: TypedValue, what: string): void {
    if (tv.type === GGUFValueType.STRING) return this.string(tv.value);
    if (tv.type !== GGUFValueType.ARRAY) return this.scalar(tv.type, tv.value, what);
    this.u32(tv.elemType);
    this.u64(tv.value.length);
    if (tv.elemType === GGUFValueType.ARRAY) {
      for (const inner of tv.value as readonly TypedValue[]) {
        if (inner.type !== GGUFValueType.ARRAY) throw new GGUFError(`${what}: element of an array of arrays is not an array`);
        this.payload(inner, what);
      }
      return;
    }
    const items = tv.value as ArrayLike<number | bigint | boolean | string>;
    for (let i = 0; i < items.length; i++) {
      const item = items[i]!;
      if (tv.elemType === GGUFValueType.STRING) this.string(String(item));
      else this.scalar(tv.elemType, item as number | bigint | boolean, `${what}[${i}]`);
    }
  }
  result(): Uint8Array { return this.buf.subarray(0, this.length); }
}

const SCALAR_SIZE: Partial<Record<GGUFValueType, number>> = {
  [GGUFValueType.UINT8]: 1, [GGUFValueType.INT8]: 1, [GGUFValueType.BOOL]: 1,
  [GGUFValueType.UINT16]: 2, [GGUFValueType.INT16]: 2,
  [GGUFValueType.UINT32]: 4, [GGUFValueType.INT32]: 4, [GGUFValueType.FLOAT32]: 4,
  [GGUFValueType.UINT64]: 8, [GGUFValueType.INT64]: 8, [GGUFValueType.FLOAT64]: 8,
};

function checkInt(v: number | bigint | boolean, min: number, max: number, what: string): number {
  const n = Number(v);
  if (!Number.isInteger(n) || n < min || n > max) throw new GGUFError(`${what}: ${String(v)} does not fit its integer type`);
  return n;
}

const align = (n: number, a: number) => Math.ceil(n / a) * a;

export class GGUFWriter {
  private readonly metadata = new Map<string, TypedValue>();
  private readonly tensorPlans: TensorPlan[] = [];
  private dataSize = 0;

  constructor(readonly alignment = DEFAULT_ALIGNMENT) {
    if (!Number.isInteger(alignment) || alignment <= 0 || (alignment & (alignment - 1)) !== 0) {
      throw new GGUFError(`alignment must be a power of two, got ${alignment}`);
    }
    if (alignment !== DEFAULT_ALIGNMENT) this.set('general.alignment', { type: GGUFValueType.UINT32, value: alignment });
  }

  /** Sets a metadata value; a later set of the same key replaces it (keys stay in first-set order). */
  set(key: string, value: TypedValue): this {
    if (this.tensorPlans.length > 0 && key === 'general.alignment') {
      throw new GGUFError('general.alignment must be set before tensors are added (pass it to the constructor)');
    }
    this.metadata.set(key, value);
    return this;
  }
  setString(key: string, value: string): this { return this.set(key, { type: GGUFValueType.STRING, value }); }
  setUint32(key: string, value: number): this { return this.set(key, { type: GGUFValueType.UINT32, value }); }
  setFloat32(key: string, value: number): this { return this.set(key, { type: GGUFValueType.FLOAT32, value }); }
  setBool(key: string, value: boolean): this { return this.set(key, { type: GGUFValueType.BOOL, value }); }

  /** Declares a tensor; its data must later be written in the order tensors were added. */
  addTensor(name: string, dims: readonly number[], type: GGMLType): TensorPlan {
    const traits = typeTraits(type);
    if (!traits) throw new GGUFError(`tensor "${name}": unknown type ${type}`);
    if (dims.length < 1 || dims.length > 4 || dims.some((d) => !Number.isInteger(d) || d <= 0)) {
      throw new GGUFError(`tensor "${name}": invalid dims [${dims.join(', ')}]`);
    }
    if (dims[0]! % traits.blockSize !== 0) {
      throw new GGUFError(`tensor "${name}": row length ${dims[0]} is not a multiple of the ${typeName(type)} block size ${traits.blockSize}`);
    }
    if (this.tensorPlans.some((t) => t.name === name)) throw new GGUFError(`duplicate tensor name "${name}"`);
    const nElements = dims.reduce((a, b) => a * b, 1);
    const plan: TensorPlan = { name, dims: [...dims], type, offset: this.dataSize, nBytes: (nElements / traits.blockSize) * traits.typeSize };
    this.tensorPlans.push(plan);
    this.dataSize = align(plan.offset + plan.nBytes, this.alignment);
    return plan;
  }

  get tensors(): readonly TensorPlan[] { return this.tensorPlans; }

  /** Header, metadata and tensor infos, zero-padded to the alignment where tensor data starts. */
  header(): Uint8Array {
    const s = new ByteSink();
    s.u32(MAGIC);
    s.u32(VERSION);
    s.u64(this.tensorPlans.length);
    s.u64(this.metadata.size);
    for (const [key, value] of this.metadata) {
      s.string(key);
      s.value(value, `metadata "${key}"`);
    }
    for (const t of this.tensorPlans) {
      s.string(t.name);
      s.u32(t.dims.length);
      for (const d of t.dims) s.u64(d);
      s.u32(t.type);
      s.u64(t.offset);
    }
    s.zeros(align(s.length, this.alignment) - s.length);
    return s.result();
  }

  /** Total file size once written. */
  fileSize(): number {
    const last = this.tensorPlans[this.tensorPlans.length - 1];
    return this.header().length + (last ? last.offset + last.nBytes : 0);
  }

  /**
   * Writes the file. `data` yields each tensor's bytes in chunks of any size; every tensor must yield
   * exactly its nBytes. Padding between tensors is written here.
   */
  writeFile(path: string, data: (t: TensorPlan) => Iterable<Uint8Array>): void {
    const fd = openSync(path, 'w');
    try {
      this.emit(data, (b) => {
        let done = 0;
        while (done < b.length) done += writeSync(fd, b, done, b.length - done);
      });
    } finally {
      closeSync(fd);
    }
  }

  /** The whole file in memory (tests, small files). */
  toBytes(data: (t: TensorPlan) => Iterable<Uint8Array>): Uint8Array {
    const parts: Uint8Array[] = [];
    this.emit(data, (b) => parts.push(b.slice()));
    const out = new Uint8Array(parts.reduce((n, p) => n + p.length, 0));
    let at = 0;
    for (const p of parts) {
      out.set(p, at);
      at += p.length;
    }
    return out;
  }

  private emit(data: (t: TensorPlan) => Iterable<Uint8Array>, out: (b: Uint8Array) => void): void {
    const header = this.header();
    out(header);
    let pos = 0; // relative to the data section
    for (const t of this.tensorPlans) {
      if (t.offset > pos) out(new Uint8Array(t.offset - pos));
      pos = t.offset;
      let written = 0;
      for (const chunk of data(t)) {
        written += chunk.length;
        if (written > t.nBytes) break;
        out(chunk);
      }
      if (written !== t.nBytes) {
        throw new GGUFError(`tensor "${t.name}": data source gave ${written} bytes, expected ${t.nBytes}`);
      }
      pos += t.nBytes;
    }
  }
}
