// NativeBackend: the Backend interface over the C++ kernels. Weights are zero-copy views on a
// read-only mapping of the GGUF file (one mapping per file); every call is validated again natively.
// The thread count and ISA are process-wide settings of the addon, shared by all NativeBackends.
import type { SumOrder } from '../index.js';
import type { AttentionScores, AttentionShape, Backend, ContiguousKV, KVView, PagedKV, RopeParams, Weight } from '../backend.js';
import { checkAttentionOptions, checkKeyShift, checkWeightShape, ropeShiftFactors, weightDims } from '../checks.js';
import type { GGUFFile, GGUFTensorInfo } from '../../model/gguf/reader.js';
import { GGMLType } from '../../model/gguf/types.js';
import { loadNativeAddon, type ContiguousKVArgs, type ModelFileHandle, type NativeAddon, type PagedKVArgs, type ResidualArgs, type ScoreArgs, type ShiftKeysArgs, type WeightTensorHandle } from './addon.js';

export interface NativeBackendOptions {
  /** Compute threads (default: one per physical core, or VSERVE_THREADS). */
  threads?: number;
  /** Kernel instruction set: 'portable' | 'avx2' | 'avx512' | 'avx512-amx' | 'avx512-amx-bf16' | 'neon' (default: the best the CPU has, or VSERVE_ISA). */
  isa?: string;
  /** How prefill matmuls add up: 'fast' (default) or 'llama.cpp' (SUM_ORDERS). */
  sumOrder?: SumOrder;
}

/** The weight types the native kernels run (vserve inspect reads it without loading the addon). */
export const NATIVE_WEIGHT_TYPES: ReadonlySet<GGMLType> = new Set([
  GGMLType.F32, GGMLType.F16, GGMLType.BF16, GGMLType.Q8_0, GGMLType.Q4_0, GGMLType.Q4_K, GGMLType.Q6_K,
  GGMLType.Q4_1, GGMLType.Q5_0, GGMLType.Q5_1, GGMLType.IQ4_NL, GGMLType.Q2_K, GGMLType.Q3_K, GGMLType.Q5_K, GGMLType.IQ4_XS,
]);

class NativeWeight implements Weight {
  constructor(
    readonly name: string,
    readonly type: GGMLType,
    readonly rows: number,
    readonly cols: number,
    readonly handle: WeightTensorHandle,
  ) {}
}

function handleOf(w: Weight): WeightTensorHandle {
  if (!(w instanceof NativeWeight)) throw new TypeError(`weight "${w.name}" was not created by the native backend`);
  return w.handle;
}

export class NativeBackend implements Backend {
  readonly name = 'native';
  /** What native/ggml_types.cc lays out. */
  readonly weightTypes = NATIVE_WEIGHT_TYPES;
  private readonly addon: NativeAddon;
  private readonly files = new Map<string, ModelFileHandle>();

  constructor(opts: NativeBackendOptions = {}) {
    this.addon = loadNativeAddon();
    if (opts.isa !== undefined) this.addon.selectIsa(opts.isa);
    if (opts.threads !== undefined) this.addon.setThreads(opts.threads);
    if (opts.sumOrder !== undefined) this.addon.setSumOrder(opts.sumOrder);
  }

  /** The kernel instruction set in use. */
  get isa(): string {
    return this.addon.isa();
  }

  get threads(): number {
    return this.addon.getThreads();
  }

  loadWeight(file: GGUFFile, info: GGUFTensorInfo): Weight {
    const { rows, cols } = weightDims(info);
    checkWeightShape(info.name, info.type, rows, cols, info.nBytes);
    if (file.path === undefined) return this.createWeight(info.name, info.type, rows, cols, file.tensorBytes(info));
    let mapped = this.files.get(file.path);
    if (!mapped || mapped.closed) {
      mapped = new this.addon.ModelFile(file.path);
      this.files.set(file.path, mapped);
    }
    return new NativeWeight(info.name, info.type, rows, cols, new this.addon.WeightTensor(mapped, info.fileOffset, info.type, rows, cols));
  }

  /** A weight from raw GGML bytes (copied into native memory). */
  createWeight(name: string, type: GGMLType, rows: number, cols: number, bytes: Uint8Array): Weight {
    checkWeightShape(name, type, rows, cols, bytes.length);
    return new NativeWeight(name, type, rows, cols, new this.addon.WeightTensor(bytes, 0, type, rows, cols));
  }

  prepare(w: Weight): void {
    this.addon.prepackWeight(handleOf(w));
  }

  toFloat32(w: Weight): Float32Array {
    return this.addon.toFloat32(handleOf(w));
  }

  matmul(out: Float32Array, x: Float32Array, n: number, w: Weight): void {
    this.addon.matmul(out, x, n, handleOf(w));
  }

  matmulMany(outs: readonly Float32Array[], x: Float32Array, n: number, ws: readonly Weight[]): void {
    if (outs.length !== ws.length) throw new RangeError(`matmulMany: ${outs.length} outputs for ${ws.length} weights`);
    this.addon.matmulMany(x, n, ...ws.flatMap((w, i) => [outs[i]!, handleOf(w)]));
  }

  embed(out: Float32Array, ids: Int32Array, table: Weight): void {
    this.addon.embed(out, ids, handleOf(table));
  }

  rmsnorm(out: Float32Array, x: Float32Array, weight: Float32Array, n: number, dim: number, eps: number): void {
    this.addon.rmsnorm(out, x, weight, n, dim, eps);
  }

  addRmsnorm(x: Float32Array, y: Float32Array, out: Float32Array, weight: Float32Array, n: number, dim: number, eps: number): void {
    this.addon.addRmsnorm(x, y, out, weight, n, dim, eps);
  }

  rope(x: Float32Array, positions: Int32Array, p: RopeParams): void {
    this.addon.rope(x, positions, p.nHeads, p.headDim, p.ropeDim, p.freqBase, p.freqScale, p.mode === 'neox', p.freqFactors ?? null, p.attnFactor ?? 1, p.yarnRamp ?? null);
  }

  swiglu(out: Float32Array, gate: Float32Array, up: Float32Array, len: number): void {
    this.addon.swiglu(out, gate, up, len);
  }

  softmax(out: Float32Array, x: Float32Array, n: number, len: number): void {
    this.addon.softmax(out, x, n, len);
  }

  geglu(out: Float32Array, gate: Float32Array, up: Float32Array, len: number): void {
    this.addon.geglu(out, gate, up, len);
  }

  add(x: Float32Array, y: Float32Array, len: number): void {
    this.addon.add(x, y, len);
  }

  addBias(x: Float32Array, bias: Float32Array, n: number): void {
    this.addon.addBias(x, bias, n);
  }

  kvStore(kv: KVView, layer: number, k: Float32Array, v: Float32Array, slots: Int32Array, positions: Int32Array): void {
    if (kv.layout === 'paged') this.addon.pagedKvStore(...pagedArgs(kv, layer), k, v, slots, positions);
    else this.addon.kvStore(...contiguousArgs(kv, layer), k, v, slots, positions);
  }

  attention(out: Float32Array, q: Float32Array, kv: KVView, layer: number, slots: Int32Array, rows: Int32Array, s: AttentionShape, scores?: AttentionScores): void {
    if (s.headDim !== kv.headDim || s.nKVHeads !== kv.kvHeads) {
      throw new RangeError(`attention: shape (${s.nKVHeads} KV heads of ${s.headDim}) does not match the cache (${kv.kvHeads} of ${kv.headDim})`);
    }
    checkAttentionOptions(s);
    const scoreArgs: ScoreArgs = scores ? [scores.voters, scores.acc, scores.stride] : [];
    // 0: no window, no soft-cap.
    const window = s.window ?? 0, softcap = s.softcap ?? 0;
    if (kv.layout === 'paged') this.addon.pagedAttention(out, q, ...pagedArgs(kv, layer), slots, rows, s.nHeads, s.scale, window, softcap, ...scoreArgs);
    else this.addon.attention(out, q, ...contiguousArgs(kv, layer), slots, rows, s.nHeads, s.scale, window, softcap, ...scoreArgs);
  }

  shiftKeys(kv: KVView, layer: number, slot: number, first: number, count: number, delta: number, p: RopeParams): void {
    checkKeyShift(kv, slot, first, count, delta, p);
    const shift: ShiftKeysArgs = [slot, first, count, delta, p.ropeDim, p.freqBase, p.freqScale, p.mode === 'neox' ? 1 : 0, ropeShiftFactors(p) ?? NO_FACTORS];
    if (kv.layout === 'paged') this.addon.pagedShiftKeys(...pagedArgs(kv, layer), ...shift);
    else this.addon.shiftKeys(...contiguousArgs(kv, layer), ...shift);
  }

  /** Unmaps the model files; weights loaded from them throw if used afterwards. */
  close(): void {
    for (const f of this.files.values()) f.close();
    this.files.clear();
  }
}

function contiguousArgs(kv: ContiguousKV, layer: number): ContiguousKVArgs {
  return [kv.keys(layer), kv.values(layer), kv.maxSlots, kv.maxContext, kv.kvHeads, kv.headDim, kv.keyFormat.id, kv.valueFormat.id,
    kv.rowBytes, kv.rotate ? 1 : 0, kv.rowsPerPage, kv.pageBytes, ...residualArgs(kv, layer)];
}

function pagedArgs(kv: PagedKV, layer: number): PagedKVArgs {
  return [kv.keys(layer), kv.values(layer), kv.blockSize, kv.kvHeads, kv.headDim, kv.blockTables, kv.seqLens, kv.keyFormat.id,
    kv.valueFormat.id, kv.rowBytes, kv.rotate ? 1 : 0, ...residualArgs(kv, layer)];
}

const NO_RING = new Uint8Array(0);
const NO_BOUNDARY = new Int32Array(0);
const NO_FACTORS = new Float32Array(0);

function residualArgs(kv: KVView, layer: number): ResidualArgs {
  const r = kv.residual;
  return r ? [r.keys(layer), r.values(layer), r.ringRows, r.groupTokens, r.tokens, r.encoded(layer), r.base] : [NO_RING, NO_RING, 0, 1, 0, NO_BOUNDARY, NO_BOUNDARY];
}
