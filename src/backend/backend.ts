// The Backend interface: the operations a model's forward pass is made of. The model (TypeScript)
// decides what runs; a backend decides how. Two implement it: the plain-TS reference backend (the
// oracle for tests) and the native backend (C++ kernels on a thread pool).
//
// Conventions, shared by every backend:
// - Activations are row-major Float32Arrays: a batch of `n` tokens with `d` features is n*d floats.
// - A weight matrix as GGUF stores it has dims [cols, rows] (ggml order): `rows` output features, each a
//   contiguous row of `cols` input features. matmul computes out[n, rows] = x[n, cols] · Wᵀ.
// - Batches are token-packed: token i belongs to KV slot `slots[i]` at position `positions[i]`.
import type { GGUFFile, GGUFTensorInfo } from '../model/gguf/reader.js';
import type { GGMLType } from '../model/gguf/types.js';
import type { KVFormat } from '../kv/format.js';

/** A weight tensor loaded by a backend (a view on the model file where the backend can). */
export interface Weight {
  readonly name: string;
  readonly type: GGMLType;
  /** Output features (ggml dims[1]); 1 for vectors. */
  readonly rows: number;
  /** Input features (ggml dims[0]): the contiguous dimension. */
  readonly cols: number;
}

/**
 * What both KV layouts share: the formats K and V are stored in (src/kv/format.ts) and the row stride.
 * Each token's K (and V) in a layer is one row of kvHeads x headDim values encoded in its format, at a
 * stride of `rowBytes` bytes (the larger of the two formats' rows, so K and V rows sit at the same offsets).
 */
export interface KVRowFormat {
  readonly keyFormat: KVFormat;
  readonly valueFormat: KVFormat;
  readonly rowBytes: number;
  /** The f16 window of the newest tokens, where the cache has one (KIVI); see ResidualWindow. */
  readonly residual?: ResidualWindow;
  /**
   * K and V are stored rotated by a Walsh-Hadamard transform per head (src/kv/hadamard.ts): kvStore
   * rotates them, attention rotates the query and turns the output back.
   */
  readonly rotate?: boolean;
}

/**
 * KIVI's residual: each slot's newest tokens stay in f16 in a ring of `ringRows` rows per (layer, K/V)
 * (row p of a slot at p % ringRows), and are encoded in the cache's formats a group at a time: once a slot
 * holds L tokens, the first E(L) = max(base, G * floor((L - R) / G)) are encoded, so the newest R to R + G - 1
 * tokens are f16 and the per-channel formats see whole groups. A token at position P reads positions below
 * E(P + 1) from the cache and the rest from the ring, whether it was computed alone or in a chunk; for
 * that, kvStore takes at most C = chunkTokens tokens of a slot per call (the ring keeps C rows of slack),
 * and a token's attention runs before the next kvStore of its slot (engine/forward-in-slot-chunks.ts
 * splits a batch so).
 */
export interface ResidualWindow {
  /** The newest tokens that always stay f16 (R). */
  readonly tokens: number;
  /** Tokens encoded together when they leave the window (the formats' group, G). */
  readonly groupTokens: number;
  /** The most tokens of a slot one kvStore takes (C). */
  readonly chunkTokens: number;
  /** R + G + C. */
  readonly ringRows: number;
  /** Layer's K ring: [slot][ringRows][kvHeads * headDim f16 values]. */
  keys(layer: number): Uint8Array;
  values(layer: number): Uint8Array;
  /** Per slot, how many of its first tokens are stored in the cache's formats (live). */
  encoded(layer: number): Int32Array;
  /** Per slot, tokens that were encoded when it started (cached blocks attached to it): E never falls below. */
  readonly base: Int32Array;
}

/** E(P + 1) for a token at position `pos` of `slot`: positions below it are read from the cache's formats. */
export function residualBoundary(r: ResidualWindow, layer: number, slot: number, pos: number): number {
  const g = r.groupTokens;
  return Math.min(r.encoded(layer)[slot]!, Math.max(r.base[slot]!, g * Math.floor((pos + 1 - r.tokens) / g)));
}

/**
 * The KV cache as the attention op reads it: for each layer, K and V each one contiguous byte array laid
 * out [slot][position][row] (the layout the vAttention manager provides in virtual memory and the static
 * manager provides up front). Rows are grouped in pages of `rowsPerPage` rows, `pageBytes` apart, so that
 * no row straddles two pages: (slot, pos)'s row starts at
 *   slot * (maxContext / rowsPerPage) * pageBytes + floor(pos / rowsPerPage) * pageBytes + (pos % rowsPerPage) * rowBytes.
 * maxContext is a multiple of rowsPerPage. Arrays without pages have one page of maxContext rows.
 */
export interface ContiguousKV extends KVRowFormat {
  readonly layout: 'contiguous';
  readonly maxSlots: number;
  readonly maxContext: number;
  readonly kvHeads: number;
  readonly headDim: number;
  readonly rowsPerPage: number;
  readonly pageBytes: number;
  keys(layer: number): Uint8Array;
  values(layer: number): Uint8Array;
}

/**
 * The KV cache as a paged attention kernel reads it (vLLM's PagedAttention layout): per layer, K and V
 * are each a pool of `numBlocks` blocks laid out [block][offsetInBlock][row] (rows `rowBytes` apart); a
 * slot's positions i*blockSize .. (i+1)*blockSize - 1 live in block blockTables[slot * maxBlocksPerSlot + i].
 */
export interface PagedKV extends KVRowFormat {
  readonly layout: 'paged';
  readonly maxSlots: number;
  readonly kvHeads: number;
  readonly headDim: number;
  /** Tokens per block. */
  readonly blockSize: number;
  readonly numBlocks: number;
  /** Columns of blockTables: ceil(maxContext / blockSize). */
  readonly maxBlocksPerSlot: number;
  /** Layer's K as [block][offsetInBlock][row]; a block id is the same in every layer. */
  keys(layer: number): Uint8Array;
  values(layer: number): Uint8Array;
  /** [slot][maxBlocksPerSlot] block ids, -1 = none. Live: it changes in place as slots grow. */
  readonly blockTables: Int32Array;
  /** Tokens per slot (positions below it are backed by blocks). Live. */
  readonly seqLens: Int32Array;
}

/** Either KV layout; ops dispatch on `layout`. */
export type KVView = ContiguousKV | PagedKV;

/**
 * Where attention adds the softmax weights it computes, for the eviction policies (src/kv/eviction):
 * for each batch token i with voters[i] >= 0 and each KV head kv,
 *   acc[(voters[i] * kvHeads + kv) * stride + r] += sum over the query heads h of KV head kv of token i's
 *   softmax weight on cache row r, for every row r <= rows[i] it attended to.
 * Tokens with voters[i] = -1 add nothing. Several tokens may add into the same accumulator.
 */
export interface AttentionScores {
  readonly voters: Int32Array;
  readonly acc: Float32Array;
  readonly stride: number;
}

export interface AttentionShape {
  nHeads: number;
  nKVHeads: number;
  headDim: number;
  /** Softmax scale, normally 1/sqrt(headDim). */
  scale: number;
  /**
   * Sliding window (Mistral, Gemma 2/3 local layers): token i attends only rows rows[i] - window + 1 ..
   * rows[i]; omitted, every row up to rows[i]. Rows stand for positions here, so callers must not pass a
   * window while rows differ from positions (eviction).
   */
  window?: number;
  /** Scaled scores s become softcap * tanh(s / softcap) before the softmax (Gemma 2); omitted: none. */
  softcap?: number;
}

export interface RopeParams {
  nHeads: number;
  headDim: number;
  /** How many leading dims of each head rotate (usually headDim). */
  ropeDim: number;
  freqBase: number;
  /** Linear position scaling factor (1 = none). */
  freqScale: number;
  /**
   * Divisors of each rotated pair's frequency, ropeDim/2 of them (absent = all 1): Llama 3's
   * rope_freqs, Phi-3's LongRoPE factors, YaRN's per-dimension interpolation.
   */
  freqFactors?: Float32Array;
  /** Multiplies cos and sin, so q·k by its square (LongRoPE and YaRN attention scaling; default 1). */
  attnFactor?: number;
  /**
   * YaRN's blend per rotated pair, ropeDim/2 values in [0, 1] (absent = all 0): pair i turns by
   * (1 - r) x freqScale x θᵢ + r x θᵢ, the interpolated and the extrapolated angle mixed in f32 as
   * llama.cpp mixes them (θᵢ is the angle before freqScale, freqFactors applied).
   */
  yarnRamp?: Float32Array;
  /**
   * 'normal' rotates adjacent pairs (x[2i], x[2i+1]) as original Llama GGUFs need; 'neox' rotates
   * (x[i], x[i + ropeDim/2]) as Qwen2 / GPT-NeoX-style models do.
   */
  mode: 'normal' | 'neox';
}

export interface Backend {
  readonly name: string;
  /** The GGML weight types this backend can run; the model loader refuses others by name. */
  readonly weightTypes: ReadonlySet<GGMLType>;
  /** The kernel instruction set and compute threads in use, where the backend has such choices. */
  readonly isa?: string;
  readonly threads?: number;

  /** Loads one tensor of the model. Vectors (norm weights, biases) have rows = 1. */
  loadWeight(file: GGUFFile, info: GGUFTensorInfo): Weight;
  /** Makes a weight from raw GGML bytes (rows x cols elements of `type`); tests and generated models. */
  createWeight(name: string, type: GGMLType, rows: number, cols: number, bytes: Uint8Array): Weight;
  /**
   * Readies a matrix for matmul now (the native backend re-lays some weight types out for its kernels),
   * so that the work happens at load rather than in the first request; optional, idempotent.
   */
  prepare?(w: Weight): void;
  /** Dequantizes a whole tensor to f32 (norm weights, biases, tests). */
  toFloat32(w: Weight): Float32Array;

  /** out[n, w.rows] = x[n, w.cols] · wᵀ */
  matmul(out: Float32Array, x: Float32Array, n: number, w: Weight): void;
  /**
   * outs[i][n, ws[i].rows] = x[n, cols] · ws[i]ᵀ for weights sharing the input (q/k/v, gate/up), all
   * with the same cols; the same results as one matmul per weight. Outputs must not overlap x or each other.
   */
  matmulMany(outs: readonly Float32Array[], x: Float32Array, n: number, ws: readonly Weight[]): void;
  /** out[i, :] = row ids[i] of the table (dequantized). */
  embed(out: Float32Array, ids: Int32Array, table: Weight): void;
  /** out[r, :] = x[r, :] / rms(x[r, :]) * weight, for n rows of `dim`. out may alias x. */
  rmsnorm(out: Float32Array, x: Float32Array, weight: Float32Array, n: number, dim: number, eps: number): void;
  /**
   * The residual add then the next norm: x += y, then out = rmsnorm(x), for n rows of `dim`.
   * out may alias x or y.
   */
  addRmsnorm(x: Float32Array, y: Float32Array, out: Float32Array, weight: Float32Array, n: number, dim: number, eps: number): void;
  /** Rotates the first ropeDim dims of every head of every token in place; x is [n, nHeads*headDim]. */
  rope(x: Float32Array, positions: Int32Array, p: RopeParams): void;
  /** out[i] = silu(gate[i]) * up[i] for i < len. out may alias gate. */
  swiglu(out: Float32Array, gate: Float32Array, up: Float32Array, len: number): void;
  /**
   * out[i] = gelu(gate[i]) * up[i] for i < len, with GELU's tanh approximation
   * 0.5 x (1 + tanh(sqrt(2/pi) (x + 0.044715 x^3))) (Gemma) evaluated as llama.cpp's CPU backend does: at
   * gate[i] rounded to f16, rounded to f16 itself; 0 at or below -10, gate[i] at or above 10. out may alias gate.
   */
  geglu(out: Float32Array, gate: Float32Array, up: Float32Array, len: number): void;
  /**
   * out[r, :] = softmax(x[r, :]) for n rows of len values (expert routers), as llama.cpp's CPU backend
   * computes it: exp(x - max) per value (the native AVX-512 kernels use its vector exp on each whole 16
   * values, expf on the rest), the exps summed in f64, each exp times the f32 reciprocal of the sum.
   * out may alias x.
   */
  softmax(out: Float32Array, x: Float32Array, n: number, len: number): void;
  /** x[i] += y[i] for i < len. */
  add(x: Float32Array, y: Float32Array, len: number): void;
  /** x[r, :] += bias for n rows (Qwen2-style QKV biases). */
  addBias(x: Float32Array, bias: Float32Array, n: number): void;

  /**
   * Writes this batch's K and V rows ([n, kvHeads*headDim] floats) into the cache at (slot, position),
   * encoded in the cache's formats. A paged cache must already back each position (position <
   * seqLens[slot], a valid block).
   */
  kvStore(kv: KVView, layer: number, k: Float32Array, v: Float32Array, slots: Int32Array, positions: Int32Array): void;
  /**
   * Causal attention for a token-packed batch: token i attends to cache rows 0..rows[i] of its slot's
   * cached K/V (this batch's rows must already be stored). q and out are [n, nHeads*headDim]; GQA maps
   * query head h to KV head floor(h / (nHeads / nKVHeads)); shape.window narrows the rows and
   * shape.softcap caps the scores (see AttentionShape). With `scores`, the same pass also adds the
   * softmax weights it computes into scores.acc (see AttentionScores); `out` is the same either way.
   */
  attention(out: Float32Array, q: Float32Array, kv: KVView, layer: number, slots: Int32Array, rows: Int32Array, shape: AttentionShape, scores?: AttentionScores): void;
  /**
   * Moves the cached keys of rows first .. first + count - 1 of `slot` in `layer` by `delta` positions
   * (negative or 0 too), in place: keys are stored after RoPE, and R(p + d) = R(d) R(p), so each row is
   * decoded, rotated by delta * theta_i per pair exactly as rope() with `p` rotates (pair order, ropeDim,
   * freqBase, freqScale, freqFactors; attnFactor is not applied again, the stored key already carries it)
   * and encoded in the K format again. V rows are untouched; delta 0 leaves the bytes as they are.
   * p.nHeads and p.headDim are the cache's KV heads and head size. Formats that encode groups of rows
   * (kivi2c, kivi4c) take whole groups: first and count multiples of groupTokens. Caches with a residual
   * window are refused (its newest rows are f16 in a ring). (Chunk reuse: DESIGN.md §5, CacheBlend.)
   */
  shiftKeys(kv: KVView, layer: number, slot: number, first: number, count: number, delta: number, p: RopeParams): void;

  /** Releases native resources (thread pool, mappings). */
  close(): void;
}
