// Loads vserve's native addon (build/Release/vserve_native.node, built from native/ by `npm install`)
// and describes its exports. A missing addon, one built for another Node ABI, or one older than this
// code each get an error that says how to rebuild.
import { existsSync } from 'node:fs';
import { createRequire } from 'node:module';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { nativeEnvProblem } from './native-env.js';

/** The addon API version this binding expects (native/addon.cc exports it as abiVersion). */
const EXPECTED_API_VERSION = 8;
const REBUILD_HINT = 'run `npm run build:native` (or `npm rebuild vserve` where vserve is a dependency)';

export interface ModelFileHandle {
  readonly size: number;
  readonly closed: boolean;
  close(): void;
}

export interface WeightTensorHandle {
  readonly type: number;
  readonly rows: number;
  readonly cols: number;
  readonly byteLength: number;
}

export interface BandwidthResult {
  bytesPerSecond: number;
  bytes: number;
  threads: number;
  seconds: number;
}

export interface PeakComputeResult {
  isa: string;
  threads: number;
  /** f32 multiply-add throughput, 2 flops per lane per FMA. */
  f32Flops: number;
  /** int8 dot-product throughput of the int8 matmul instructions, 2 ops per byte product. */
  int8Ops: number;
}

/** A contiguous cache as native/attention.cc reads it (see ContiguousKV). */
export type ContiguousKVArgs = [keys: Uint8Array, values: Uint8Array, maxSlots: number, maxContext: number, kvHeads: number,
  headDim: number, keyFormat: number, valueFormat: number, rowBytes: number, rotate: number, rowsPerPage: number, pageBytes: number, ...ResidualArgs];
/** A paged cache as native/paged_attention.cc reads it (see PagedKV). */
export type PagedKVArgs = [keys: Uint8Array, values: Uint8Array, blockSize: number, kvHeads: number, headDim: number,
  blockTables: Int32Array, seqLens: Int32Array, keyFormat: number, valueFormat: number, rowBytes: number, rotate: number, ...ResidualArgs];
/** A layer's residual window (native/kv_store.h Residual); ringRows 0 and empty arrays: none. */
/** Attention's optional scores output (native/attention_scores.h); none when left out. */
export type ScoreArgs = [] | [voters: Int32Array, acc: Float32Array, stride: number];
/** shiftKeys' rows and rotation (native/kv_shift_keys.cc); freqFactors empty: none. */
export type ShiftKeysArgs = [slot: number, first: number, count: number, delta: number, ropeDim: number, freqBase: number, freqScale: number,
  neox: number, freqFactors: Float32Array];
export type ResidualArgs = [ringKeys: Uint8Array, ringValues: Uint8Array, ringRows: number, groupTokens: number, residualTokens: number, encoded: Int32Array, base: Int32Array];

export interface NativeAddon {
  readonly abiVersion: number;
  isa(): string;
  supportedIsas(): string[];
  selectIsa(isa: string): string;
  /** Activation rows from which the ISA in use multiplies packed weights on bf16 tiles (0: never). */
  bf16MatmulFrom(): number;
  /** 'fast' or 'llama.cpp': how prefill matmuls add up (native/cpu_features.h prefillInLlamaCppOrder). */
  sumOrder(): string;
  setSumOrder(order: string): string;
  getThreads(): number;
  /** 0 restores the default (one thread per physical core). */
  setThreads(threads: number): number;
  readBandwidth(bytes: number, threads?: number): BandwidthResult;
  /** Measured arithmetic peak of the ISA in use on `threads` threads (NaN where the ISA has no probe). */
  peakCompute(threads?: number): PeakComputeResult;

  ModelFile: new (path: string) => ModelFileHandle;
  WeightTensor: new (source: ModelFileHandle | Uint8Array, byteOffset: number, type: number, rows: number, cols: number) => WeightTensorHandle;

  /** [max, first argmax, log-sum-exp] of the logits into out. */
  logitStats(logits: Float32Array, out: Float64Array): void;
  /** Writes the indices of the `count` largest values, largest first; returns how many. */
  topIndices(values: Float32Array, count: number, out: Int32Array): number;
  drawTempered(values: Float32Array, invTemperature: number, r: number, floor?: number, max?: number): number;
  /** The smallest value whose values at or above hold at least p of softmax(values)'s mass. */
  nucleusFloor(values: Float32Array, logSumExp: number, p: number): number;
  /** Makes the weight's packed copy now; returns its bytes (0: the weight runs from the file layout). */
  prepackWeight(w: WeightTensorHandle): number;
  matmul(out: Float32Array, x: Float32Array, n: number, w: WeightTensorHandle): void;
  /**
   * The int8 activations a matmul with a weight of GGML `type` runs on (llama.cpp's Q8_0 / Q8_1 / Q8_K
   * per type): signed quants, a scale per 32 values and s: for the 256-value super-block types each 16
   * values' quant sum times its scale, for Q4_1 / Q5_1 Q8_1's s field per 32 values.
   */
  quantizeActivations(x: Float32Array, n: number, cols: number, type: number): { q: Int8Array; d: Float32Array; s?: Float32Array };
  /** Pairs (out0, w0, out1, w1, ...) after x and n; 1 to 8 of them. */
  matmulMany(x: Float32Array, n: number, ...outsAndWeights: (Float32Array | WeightTensorHandle)[]): void;
  embed(out: Float32Array, ids: Int32Array, table: WeightTensorHandle): void;
  toFloat32(w: WeightTensorHandle): Float32Array;
  rmsnorm(out: Float32Array, x: Float32Array, weight: Float32Array, n: number, dim: number, eps: number): void;
  addRmsnorm(x: Float32Array, y: Float32Array, out: Float32Array, weight: Float32Array, n: number, dim: number, eps: number): void;
  rope(x: Float32Array, positions: Int32Array, nHeads: number, headDim: number, ropeDim: number, freqBase: number, freqScale: number, neox: boolean, freqFactors: Float32Array | null, attnFactor: number, yarnRamp: Float32Array | null): void;
  swiglu(out: Float32Array, gate: Float32Array, up: Float32Array, len: number): void;
  geglu(out: Float32Array, gate: Float32Array, up: Float32Array, len: number): void;
  softmax(out: Float32Array, x: Float32Array, n: number, len: number): void;
  add(x: Float32Array, y: Float32Array, len: number): void;
  addBias(x: Float32Array, bias: Float32Array, n: number): void;
  kvStore(...args: [...ContiguousKVArgs, k: Float32Array, v: Float32Array, slots: Int32Array, positions: Int32Array]): void;
  /** With ScoreArgs, also adds the softmax weights into acc (src/backend/backend.ts AttentionScores). */
  attention(out: Float32Array, q: Float32Array, ...args: [...ContiguousKVArgs, slots: Int32Array, rows: Int32Array, nHeads: number, scale: number, window: number, softcap: number, ...ScoreArgs]): void;
  pagedKvStore(...args: [...PagedKVArgs, k: Float32Array, v: Float32Array, slots: Int32Array, positions: Int32Array]): void;
  /** A zero-filled ArrayBuffer of `bytes` bytes that starts on a page boundary (see native/aligned_buffer.cc). */
  alignedBuffer(bytes: number): ArrayBuffer;
  /** The largest power of two, up to 4096, dividing the address of the array's first element. */
  byteAlignment(array: ArrayBufferView): number;
  /** Keeps up to `bytes` of freed heap memory mapped (glibc); false where the C library has no such setting. */
  retainFreedHeap(bytes: number): boolean;
  pagedAttention(out: Float32Array, q: Float32Array, ...args: [...PagedKVArgs, slots: Int32Array, rows: Int32Array, nHeads: number, scale: number, window: number, softcap: number, ...ScoreArgs]): void;
  /** Rotates a slot's cached keys by delta positions in place (src/backend/backend.ts Backend.shiftKeys). */
  shiftKeys(...args: [...ContiguousKVArgs, ...ShiftKeysArgs]): void;
  pagedShiftKeys(...args: [...PagedKVArgs, ...ShiftKeysArgs]): void;
}

export class NativeAddonError extends Error {
  override name = 'NativeAddonError';
}

function packageRoot(): string {
  let dir = dirname(fileURLToPath(import.meta.url));
  while (!existsSync(join(dir, 'package.json'))) {
    const up = dirname(dir);
    if (up === dir) throw new NativeAddonError('cannot find vserve\'s package root (package.json) above the native binding');
    dir = up;
  }
  return dir;
}

let cached: NativeAddon | undefined;

/** The native addon, loaded once; throws NativeAddonError with a rebuild hint when it cannot be used. */
export function loadNativeAddon(): NativeAddon {
  if (cached) return cached;
  const path = join(packageRoot(), 'build', 'Release', 'vserve_native.node');
  const envProblem = nativeEnvProblem();
  if (envProblem) throw new NativeAddonError(envProblem);
  if (!existsSync(path)) {
    throw new NativeAddonError(`vserve's native addon is not built (${path} is missing); ${REBUILD_HINT}`);
  }
  let addon: NativeAddon;
  try {
    addon = createRequire(import.meta.url)(path) as NativeAddon;
  } catch (e) {
    const msg = (e as Error).message;
    if (/NODE_MODULE_VERSION|was compiled against a different Node\.js version/.test(msg)) {
      throw new NativeAddonError(`vserve's native addon was built for another Node.js ABI than this Node ${process.version}; ${REBUILD_HINT}. (${msg})`);
    }
    // A kernel set this CPU lacks: the addon is fine, the environment asks for too much.
    if (msg.startsWith('VSERVE_ISA')) throw new NativeAddonError(msg);
    throw new NativeAddonError(`cannot load vserve's native addon ${path}: ${msg}; ${REBUILD_HINT}`);
  }
  if (addon.abiVersion !== EXPECTED_API_VERSION) {
    throw new NativeAddonError(`vserve's native addon has API version ${addon.abiVersion}, this code needs ${EXPECTED_API_VERSION}; ${REBUILD_HINT}`);
  }
  cached = addon;
  return addon;
}
