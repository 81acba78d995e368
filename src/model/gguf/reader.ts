// GGUF reader: header, metadata and tensor infos, versions 2 and 3. Tensor data is not read here;
// GGUFFile.tensorBytes reads one tensor on demand and the native backend maps the file instead.
// Every count, length and offset is checked against the bytes that remain, so malformed input fails
// with a GGUFError before any large allocation.
import { GGUFError } from './errors.js';
import { BufferSource, FileSource, type ByteSource } from './source.js';
import { GGMLType, GGUFValueType, typeName, typeTraits, type GGUFValue } from './types.js';

const MAGIC = 0x46554747; // "GGUF" little-endian
const MAX_DIMS = 4;
const DEFAULT_ALIGNMENT = 32;
/** Nested metadata arrays deeper than this are rejected (a fuzzed file could otherwise recurse forever). */
const MAX_ARRAY_DEPTH = 8;

export interface GGUFTensorInfo {
  name: string;
  /** ggml order: dims[0] is the contiguous (row) dimension. */
  dims: number[];
  type: GGMLType;
  /** Offset relative to the start of the data section. */
  offset: number;
  /** Absolute offset in the file. */
  fileOffset: number;
  nElements: number;
  nBytes: number;
}

/** Reads sequentially from a ByteSource through a window so small reads do not each hit the disk. */
class Cursor {
  pos = 0;
  private window: Uint8Array = new Uint8Array(0);
  private windowStart = 0;
  private view: DataView = new DataView(new ArrayBuffer(0));
  private readonly decoder = new TextDecoder('utf-8', { fatal: true, ignoreBOM: true });

  constructor(private readonly src: ByteSource, private readonly path?: string) {}

  get remaining(): number {
    return this.src.size - this.pos;
  }

  fail(message: string): never {
    throw new GGUFError(message, this.path);
  }

  /** Makes `n` bytes at pos available in the window and returns their offset within it. */
  private need(n: number, what: string): number {
    if (n > this.remaining) {
      this.fail(`file is truncated: ${what} needs ${n} bytes at offset ${this.pos}, only ${this.remaining} remain`);
    }
    const rel = this.pos - this.windowStart;
    if (rel >= 0 && rel + n <= this.window.length) return rel;
    const len = Math.min(Math.max(n, 1 << 20), this.remaining);
    this.window = this.src.read(this.pos, len);
    this.windowStart = this.pos;
    this.view = new DataView(this.window.buffer, this.window.byteOffset, this.window.byteLength);
    return 0;
  }

  u8(what: string): number {
    const r = this.need(1, what);
    this.pos += 1;
    return this.view.getUint8(r);
  }
  u32(what: string): number {
    const r = this.need(4, what);
    this.pos += 4;
    return this.view.getUint32(r, true);
  }
  /** A u64 that must fit in a double exactly (counts, lengths, offsets). */
  u64(what: string): number {
    const r = this.need(8, what);
    this.pos += 8;
    const v = this.view.getBigUint64(r, true);
    if (v > BigInt(Number.MAX_SAFE_INTEGER)) this.fail(`${what} is ${v}, far beyond any real file`);
    return Number(v);
  }
  scalar(type: GGUFValueType, what: string): number | bigint | boolean {
    switch (type) {
      case GGUFValueType.UINT8: return this.view.getUint8(this.take(1, what));
      case GGUFValueType.INT8: return this.view.getInt8(this.take(1, what));
      case GGUFValueType.UINT16: return this.view.getUint16(this.take(2, what), true);
      case GGUFValueType.INT16: return this.view.getInt16(this.take(2, what), true);
      case GGUFValueType.UINT32: return this.view.getUint32(this.take(4, what), true);
      case GGUFValueType.INT32: return this.view.getInt32(this.take(4, what), true);
      case GGUFValueType.FLOAT32: return this.view.getFloat32(this.take(4, what), true);
      case GGUFValueType.FLOAT64: return this.view.getFloat64(this.take(8, what), true);
      case GGUFValueType.BOOL: {
        const b = this.view.getUint8(this.take(1, what));
        if (b > 1) this.fail(`${what}: bool value is ${b}, expected 0 or 1`);
        return b === 1;
      }
      case GGUFValueType.UINT64: return exactNumber(this.view.getBigUint64(this.take(8, what), true));
      case GGUFValueType.INT64: return exactNumber(this.view.getBigInt64(this.take(8, what), true));
      default: return this.fail(`${what}: not a scalar type (${type})`);
    }
  }
  private take(n: number, what: string): number {
    const r = this.need(n, what);
    this.pos += n;
    return r;
  }
  string(what: string): string {
    const len = this.u64(`${what} length`);
    if (len > this.remaining) this.fail(`${what}: string length ${len} points past the end of the file`);
    const r = this.need(len, what);
    this.pos += len;
    try {
      return this.decoder.decode(this.window.subarray(r, r + len));
    } catch {
      return this.fail(`${what}: string is not valid UTF-8`);
    }
  }
  /** Copies `n` bytes into a fresh, aligned buffer (for typed arrays). */
  bytes(n: number, what: string): Uint8Array {
    const out = new Uint8Array(n);
    let done = 0;
    while (done < n) {
      const chunk = Math.min(n - done, 1 << 20);
      const r = this.need(chunk, what);
      out.set(this.window.subarray(r, r + chunk), done);
      this.pos += chunk;
      done += chunk;
    }
    return out;
  }
}

function exactNumber(v: bigint): number | bigint {
  return v >= BigInt(Number.MIN_SAFE_INTEGER) && v <= BigInt(Number.MAX_SAFE_INTEGER) ? Number(v) : v;
}

const SCALAR_SIZE: Partial<Record<GGUFValueType, number>> = {
  [GGUFValueType.UINT8]: 1, [GGUFValueType.INT8]: 1, [GGUFValueType.BOOL]: 1,
  [GGUFValueType.UINT16]: 2, [GGUFValueType.INT16]: 2,
  [GGUFValueType.UINT32]: 4, [GGUFValueType.INT32]: 4, [GGUFValueType.FLOAT32]: 4,
  [GGUFValueType.UINT64]: 8, [GGUFValueType.INT64]: 8, [GGUFValueType.FLOAT64]: 8,
};

function readValue(c: Cursor, type: number, what: string, depth: number): GGUFValue {
  if (type === GGUFValueType.STRING) return c.string(what);
  if (type === GGUFValueType.ARRAY) return readArray(c, what, depth + 1);
  if (SCALAR_SIZE[type as GGUFValueType] === undefined) c.fail(`${what}: unknown value type ${type}`);
  return c.scalar(type, what);
}

function readArray(c: Cursor, what: string, depth: number): GGUFValue {
  if (depth > MAX_ARRAY_DEPTH) c.fail(`${what}: arrays nested deeper than ${MAX_ARRAY_DEPTH}`);
  const elemType = c.u32(`${what} element type`);
  const count = c.u64(`${what} element count`);
  const elemSize = SCALAR_SIZE[elemType as GGUFValueType];
  if (elemSize !== undefined) {
    if (count * elemSize > c.remaining) c.fail(`${what}: array of ${count} elements points past the end of the file`);
    const raw = c.bytes(count * elemSize, what);
    const buf = raw.buffer;
    switch (elemType as GGUFValueType) {
      case GGUFValueType.UINT8: return raw;
      case GGUFValueType.INT8: return new Int8Array(buf);
      case GGUFValueType.UINT16: return new Uint16Array(buf);
      case GGUFValueType.INT16: return new Int16Array(buf);
      case GGUFValueType.UINT32: return new Uint32Array(buf);
      case GGUFValueType.INT32: return new Int32Array(buf);
      case GGUFValueType.FLOAT32: return new Float32Array(buf);
      case GGUFValueType.FLOAT64: return new Float64Array(buf);
      case GGUFValueType.UINT64: return new BigUint64Array(buf);
      case GGUFValueType.INT64: return new BigInt64Array(buf);
      case GGUFValueType.BOOL: {
        const out: boolean[] = new Array(count);
        for (let i = 0; i < count; i++) {
          if (raw[i]! > 1) c.fail(`${what}[${i}]: bool value is ${raw[i]}, expected 0 or 1`);
          out[i] = raw[i] === 1;
        }
        return out;
      }
    }
  }
  // Strings take at least 8 bytes (their length) and nested arrays at least 12.
  const minSize = elemType === GGUFValueType.STRING ? 8 : elemType === GGUFValueType.ARRAY ? 12 : 0;
  if (minSize === 0) c.fail(`${what}: unknown array element type ${elemType}`);
  if (count * minSize > c.remaining) c.fail(`${what}: array of ${count} elements points past the end of the file`);
  if (elemType === GGUFValueType.STRING) {
    const out: string[] = new Array(count);
    for (let i = 0; i < count; i++) out[i] = c.string(what);
    return out;
  }
  const out: GGUFValue[] = new Array(count);
  for (let i = 0; i < count; i++) out[i] = readArray(c, `${what}[${i}]`, depth);
  return out;
}

export class GGUFFile {
  private constructor(
    readonly path: string | undefined,
    readonly version: number,
    readonly metadata: Map<string, GGUFValue>,
    readonly tensors: GGUFTensorInfo[],
    readonly alignment: number,
    /** Absolute file offset where tensor data begins. */
    readonly dataOffset: number,
    readonly fileSize: number,
    private readonly source: ByteSource,
  ) {
    this.tensorsByName = new Map(tensors.map((t) => [t.name, t]));
  }

  private readonly tensorsByName: Map<string, GGUFTensorInfo>;

  /** Opens a GGUF file; only the header, metadata and tensor infos are read. */
  static open(path: string): GGUFFile {
    let src: FileSource;
    try {
      src = new FileSource(path);
    } catch (e) {
      throw new GGUFError(`cannot open: ${(e as Error).message}`, path);
    }
    try {
      return GGUFFile.parse(src, path);
    } catch (e) {
      src.close();
      throw e;
    }
  }

  /** Parses a GGUF held in memory. */
  static fromBytes(bytes: Uint8Array, name?: string): GGUFFile {
    return GGUFFile.parse(new BufferSource(bytes), name);
  }

  private static parse(src: ByteSource, path?: string): GGUFFile {
    const c = new Cursor(src, path);
    if (src.size < 4) c.fail(`file is truncated: ${src.size} bytes, not even a GGUF magic number`);
    const magic = c.u32('magic');
    if (magic !== MAGIC) {
      const shown = Buffer.from(new Uint32Array([magic]).buffer).toString('latin1');
      c.fail(`not a GGUF file: bad magic ${JSON.stringify(shown)} (expected "GGUF")`);
    }
    const version = c.u32('version');
    if (version === 1) c.fail('GGUF version 1 is not supported (it is obsolete; convert the model again)');
    if (version !== 2 && version !== 3) c.fail(`unsupported GGUF version ${version} (supported: 2, 3)`);
    const tensorCount = c.u64('tensor count');
    const kvCount = c.u64('metadata count');
    // A key-value pair takes at least 8 (key length) + 4 (type) + 1 bytes; a tensor info at least 8+4+8+4+8.
    if (kvCount * 13 > c.remaining) c.fail(`metadata count ${kvCount} is larger than the file can hold (truncated or corrupt file)`);
    if (tensorCount * 32 > c.remaining) c.fail(`tensor count ${tensorCount} is larger than the file can hold (truncated or corrupt file)`);

    const metadata = new Map<string, GGUFValue>();
    for (let i = 0; i < kvCount; i++) {
      const key = c.string(`metadata key #${i}`);
      const type = c.u32(`type of metadata "${key}"`);
      if (metadata.has(key)) c.fail(`duplicate metadata key "${key}"`);
      metadata.set(key, readValue(c, type, `metadata "${key}"`, 0));
    }

    let alignment = DEFAULT_ALIGNMENT;
    const al = metadata.get('general.alignment');
    if (al !== undefined) {
      if (typeof al !== 'number' || !Number.isInteger(al) || al <= 0 || al > 1 << 30 || (al & (al - 1)) !== 0) {
        return c.fail(`general.alignment must be a power of two, got ${String(al)}`);
      }
      alignment = al;
    }

    const infos: Omit<GGUFTensorInfo, 'fileOffset'>[] = [];
    const names = new Set<string>();
    for (let i = 0; i < tensorCount; i++) {
      const name = c.string(`tensor #${i} name`);
      if (names.has(name)) c.fail(`duplicate tensor name "${name}"`);
      names.add(name);
      const nDims = c.u32(`tensor "${name}" dimension count`);
      if (nDims < 1 || nDims > MAX_DIMS) c.fail(`tensor "${name}" has ${nDims} dimensions (1 to ${MAX_DIMS} allowed)`);
      const dims: number[] = [];
      let nElements = 1;
      for (let d = 0; d < nDims; d++) {
        const n = c.u64(`tensor "${name}" dimension ${d}`);
        if (n === 0) c.fail(`tensor "${name}" has a zero-sized dimension ${d}`);
        nElements *= n;
        if (nElements > Number.MAX_SAFE_INTEGER) c.fail(`tensor "${name}" element count overflows`);
        dims.push(n);
      }
      const type = c.u32(`tensor "${name}" type`);
      const traits = typeTraits(type);
      if (!traits) return c.fail(`tensor "${name}" has unknown type ${type}`);
      if (dims[0]! % traits.blockSize !== 0) {
        c.fail(`tensor "${name}": row length ${dims[0]} is not a multiple of the ${traits.name} block size ${traits.blockSize}`);
      }
      const nBytes = (nElements / traits.blockSize) * traits.typeSize;
      const offset = c.u64(`tensor "${name}" offset`);
      if (offset % alignment !== 0) c.fail(`tensor "${name}" offset ${offset} is not aligned to ${alignment}`);
      infos.push({ name, dims, type: type as GGMLType, offset, nElements, nBytes });
    }

    const dataOffset = Math.ceil(c.pos / alignment) * alignment;
    const dataSize = src.size - dataOffset;
    const tensors: GGUFTensorInfo[] = infos.map((t) => {
      if (t.offset + t.nBytes > dataSize) {
        c.fail(`tensor "${t.name}" (${typeName(t.type)}, ${t.nBytes} bytes at data offset ${t.offset}) extends past the end of the file; the file is truncated`);
      }
      return { ...t, fileOffset: dataOffset + t.offset };
    });
    return new GGUFFile(path, version, metadata, tensors, alignment, dataOffset, src.size, src);
  }

  tensor(name: string): GGUFTensorInfo | undefined {
    return this.tensorsByName.get(name);
  }

  /** Reads one tensor's raw bytes (a copy). */
  tensorBytes(t: GGUFTensorInfo): Uint8Array {
    return this.source.read(t.fileOffset, t.nBytes);
  }

  /** Reads up to the first `bytes` bytes of a tensor (a copy). */
  tensorHead(t: GGUFTensorInfo, bytes: number): Uint8Array {
    return this.source.read(t.fileOffset, Math.min(bytes, t.nBytes));
  }

  get<T extends GGUFValue>(key: string): T | undefined {
    return this.metadata.get(key) as T | undefined;
  }

  close(): void {
    this.source.close();
  }
}
