// Benchmark models: GGUF files at real model shapes (Llama, Qwen2 for a 152K vocabulary, and a slice of
// Qwen3-30B-A3B's mixture-of-experts layers) with random
// weights and a real-sized tokenizer (bench/bench-tokenizers.ts), generated on demand into .cache/models/
// and reused by name. Speed does not depend on the weights'
// values and peers load the same file; the values are still sane (small, zero-mean; norms ≈ 1) so a
// forward pass gives finite logits.
import { existsSync, mkdirSync, renameSync, rmSync } from 'node:fs';
import { join } from 'node:path';
import { GGUFFile } from '../src/model/gguf/reader.js';
import { GGMLType, typeTraits } from '../src/model/gguf/types.js';
import { GGUFWriter, inferTyped, type TensorPlan } from '../src/model/gguf/writer.js';
import { BenchArgs } from './args.js';
import { benchTokenizerMetadata, type BenchTokenizer } from './bench-tokenizers.js';
import { modelCacheDir } from './paths.js';
import { ProgressBar } from '../src/cli/progress-bar.js';
import { fillRandomBlocks, normWeights, Xorshift128 } from './random-weights.js';

/** Bump when the generated files change, so stale cached files are regenerated. */
const GENERATOR_VERSION = 2;
const WEIGHT_STD = 0.02;

/** What the architectures of benchmark models add to Llama's layers. */
const ARCHITECTURES = {
  llama: { qkvBias: false },
  // Qwen2: biases on Q, K and V (its NeoX-style RoPE is implied by the architecture name).
  qwen2: { qkvBias: true },
  // Qwen3-MoE: no biases, RMS norms on each head's Q and K (shape.qkNorm), experts in place of the MLP.
  qwen3moe: { qkvBias: false },
} as const;
export type BenchArchitecture = keyof typeof ARCHITECTURES;

export interface ModelShape {
  /** general.architecture (default llama). */
  arch?: BenchArchitecture;
  /** Default llama-spm, whose 32000 tokens `vocab` must then be. */
  tokenizer?: BenchTokenizer;
  /** No output.weight: the output projection is token_embd. */
  tiedEmbeddings?: boolean;
  /** RMS norm epsilon (default 1e-5). */
  normEps?: number;
  /** Width of an attention head (default dim / heads). */
  headDim?: number;
  /** RMS norms on each head's Q and K (attn_q_norm, attn_k_norm). */
  qkNorm?: boolean;
  /** A mixture of experts in place of each layer's MLP: `used` of `count` experts, each `width` wide. */
  experts?: { count: number; used: number; width: number };
  dim: number;
  ffn: number;
  layers: number;
  heads: number;
  kvHeads: number;
  vocab: number;
  context: number;
  ropeBase: number;
  note?: string;
}

export const SHAPES = {
  'tinyllama-1.1b': { dim: 2048, ffn: 5632, layers: 22, heads: 32, kvHeads: 4, vocab: 32000, context: 2048, ropeBase: 10000 },
  'tinyllama-1.1b-8k': {
    dim: 2048, ffn: 5632, layers: 22, heads: 32, kvHeads: 4, vocab: 32000, context: 8192, ropeBase: 10000,
    note: 'TinyLlama-1.1B shapes with context 8192 instead of 2048, for long-context decode benchmarks (an engine refuses contexts past the model\'s)',
  },
  'llama-3.2-1b': {
    dim: 2048, ffn: 8192, layers: 16, heads: 32, kvHeads: 8, vocab: 32000, context: 8192, ropeBase: 500000,
    note: 'Llama-3.2-1B layer shapes, but with the 32000-token llama-spm vocabulary instead of its 128256-token one, ' +
      'an untied output matrix, and context 8192',
  },
  'llama-2-7b': { dim: 4096, ffn: 11008, layers: 32, heads: 32, kvHeads: 32, vocab: 32000, context: 4096, ropeBase: 10000 },
  // Qwen2.5-0.5B's hyperparameters (its config.json), for a model where the 151936-token vocabulary
  // (output matrix and sampling) is a large part of each decode step.
  'qwen2.5-0.5b': {
    arch: 'qwen2', tokenizer: 'qwen2-bpe', tiedEmbeddings: true, normEps: 1e-6,
    dim: 896, ffn: 4864, layers: 24, heads: 14, kvHeads: 2, vocab: 151936, context: 32768, ropeBase: 1000000,
    note: 'Qwen2.5-0.5B shapes with a stand-in tokenizer: GPT-2\'s tokens and merges padded to its 151936 ids',
  },
  // Qwen3-30B-A3B's hyperparameters (its config.json) for 4 of its 48 layers: 128 experts of width 768
  // per layer, 8 used per token. Each layer costs what the full model's do, in a file a tenth the size.
  'qwen3-30b-a3b-4l': {
    arch: 'qwen3moe', tokenizer: 'qwen2-bpe', normEps: 1e-6, headDim: 128, qkNorm: true,
    experts: { count: 128, used: 8, width: 768 },
    dim: 2048, ffn: 6144, layers: 4, heads: 32, kvHeads: 4, vocab: 151936, context: 32768, ropeBase: 1000000,
    note: 'Qwen3-30B-A3B layer shapes, 4 of its 48 layers, with the Qwen2.5 stand-in tokenizer',
  },
} satisfies Record<string, ModelShape>;
export type ShapeName = keyof typeof SHAPES;

/** The matrices of a layer, by their GGUF name (blk.N.<role>.weight). */
export type MatrixRole = 'attn_q' | 'attn_k' | 'attn_v' | 'attn_output' | 'ffn_gate' | 'ffn_up' | 'ffn_down';

/** Where a layer matrix sits: its layer, the layer count and the GQA ratio (heads / KV heads). */
interface LayerPlace {
  layer: number;
  layers: number;
  gqa: number;
}

/**
 * A weight format: the type of the matrices (and of token_embd), of the output matrix, the
 * general.file_type written, and for llama.cpp-style mixes the layer matrices that get another type.
 */
interface WeightMix {
  matrix: GGMLType;
  output: GGMLType;
  fileType: number;
  overrides?: Partial<Record<MatrixRole, (p: LayerPlace) => GGMLType>>;
}

/** llama.cpp's use_more_bits (integer divisions): the first and last eighth of the layers and every third one between. */
const moreBits = ({ layer, layers }: LayerPlace) =>
  layer < Math.floor(layers / 8) || layer >= Math.floor((7 * layers) / 8) || (layer - Math.floor(layers / 8)) % 3 === 2;

// The K-quant and IQ4_XS mixes follow llama.cpp's per-tensor choices (llama_tensor_get_type) for a
// Llama model quantized without an importance matrix, output matrix in Q6_K throughout:
//   Q4_K_M / Q5_K_M: Q4_K / Q5_K, with attn_v and ffn_down in Q6_K on the moreBits layers.
//   Q3_K_M: Q3_K; attn_v Q5_K on layers 0-1 and Q4_K after; attn_output Q4_K; ffn_down Q5_K on the
//     first sixteenth of the layers and Q4_K after.
//   Q2_K: Q2_K; attn_v Q4_K with GQA >= 4 (Q3_K without); attn_output and ffn_down Q3_K.
//   IQ4_XS: IQ4_XS; attn_v Q5_K with GQA >= 4; ffn_down Q5_K on the first eighth of the layers.
// With tied embeddings, token_embd takes the output matrix's type (llama.cpp treats it as the output
// then). Rows that are not a whole number of a type's blocks fall back as llama.cpp's do (fitRow).
// Expert matrices take their MLP role's type, as llama.cpp's do (ffn_down_exps counts as ffn_down); the
// router (ffn_gate_inp) stays in F32 as llama.cpp's quantizer leaves it. The smaller special cases (Falcon,
// imatrix-dependent choices, attn_v in Q8_0 for models of exactly 8 experts) do not apply here.
const DTYPES = {
  f32: { matrix: GGMLType.F32, output: GGMLType.F32, fileType: 0 },
  f16: { matrix: GGMLType.F16, output: GGMLType.F16, fileType: 1 },
  q8_0: { matrix: GGMLType.Q8_0, output: GGMLType.Q8_0, fileType: 7 },
  q4_0: { matrix: GGMLType.Q4_0, output: GGMLType.Q4_0, fileType: 2 },
  // The other 32-element block types, everywhere as q4_0 is. file_type: llama.cpp's MOSTLY_Q4_1 (3),
  // MOSTLY_Q5_0 (8), MOSTLY_Q5_1 (9), MOSTLY_IQ4_NL (25).
  q4_1: { matrix: GGMLType.Q4_1, output: GGMLType.Q4_1, fileType: 3 },
  q5_0: { matrix: GGMLType.Q5_0, output: GGMLType.Q5_0, fileType: 8 },
  q5_1: { matrix: GGMLType.Q5_1, output: GGMLType.Q5_1, fileType: 9 },
  iq4_nl: { matrix: GGMLType.IQ4_NL, output: GGMLType.IQ4_NL, fileType: 25 },
  // As llama.cpp's k-quant mixes do: the output matrix in Q6_K. file_type 14 = MOSTLY_Q4_K_S.
  q4_K: { matrix: GGMLType.Q4_K, output: GGMLType.Q6_K, fileType: 14 },
  q4_K_M: {
    matrix: GGMLType.Q4_K, output: GGMLType.Q6_K, fileType: 15,
    overrides: { attn_v: (p) => (moreBits(p) ? GGMLType.Q6_K : GGMLType.Q4_K), ffn_down: (p) => (moreBits(p) ? GGMLType.Q6_K : GGMLType.Q4_K) },
  },
  q5_K_M: {
    matrix: GGMLType.Q5_K, output: GGMLType.Q6_K, fileType: 17,
    overrides: { attn_v: (p) => (moreBits(p) ? GGMLType.Q6_K : GGMLType.Q5_K), ffn_down: (p) => (moreBits(p) ? GGMLType.Q6_K : GGMLType.Q5_K) },
  },
  q3_K_M: {
    matrix: GGMLType.Q3_K, output: GGMLType.Q6_K, fileType: 12,
    overrides: {
      attn_v: ({ layer }) => (layer < 2 ? GGMLType.Q5_K : GGMLType.Q4_K),
      attn_output: () => GGMLType.Q4_K,
      ffn_down: ({ layer, layers }) => (layer < Math.floor(layers / 16) ? GGMLType.Q5_K : GGMLType.Q4_K),
    },
  },
  q2_K: {
    matrix: GGMLType.Q2_K, output: GGMLType.Q6_K, fileType: 10,
    overrides: {
      attn_v: ({ gqa }) => (gqa >= 4 ? GGMLType.Q4_K : GGMLType.Q3_K),
      attn_output: () => GGMLType.Q3_K,
      ffn_down: () => GGMLType.Q3_K,
    },
  },
  iq4_xs: {
    matrix: GGMLType.IQ4_XS, output: GGMLType.Q6_K, fileType: 30,
    overrides: {
      attn_v: ({ gqa }) => (gqa >= 4 ? GGMLType.Q5_K : GGMLType.IQ4_XS),
      ffn_down: ({ layer, layers }) => (layer < Math.floor(layers / 8) ? GGMLType.Q5_K : GGMLType.IQ4_XS),
    },
  },
} as const satisfies Record<string, WeightMix>;

/** The type of layer matrix `role` in a format. */
export function matrixType(dtype: BenchDType, role: MatrixRole, place: LayerPlace): GGMLType {
  const mix: WeightMix = DTYPES[dtype];
  return mix.overrides?.[role]?.(place) ?? mix.matrix;
}
export type BenchDType = keyof typeof DTYPES;

/**
 * llama.cpp's fallback for a matrix whose rows are not a whole number of the chosen type's blocks
 * (e.g. Qwen2.5-0.5B's 896-wide rows and 256-element K-quant super-blocks).
 */
function fitRow(type: GGMLType, rowLength: number): GGMLType {
  if (rowLength % typeTraits(type)!.blockSize === 0) return type;
  switch (type) {
    case GGMLType.Q2_K: case GGMLType.Q3_K: case GGMLType.IQ4_XS: return GGMLType.IQ4_NL;
    case GGMLType.Q4_K: return GGMLType.Q5_0;
    case GGMLType.Q5_K: return GGMLType.Q5_1;
    case GGMLType.Q6_K: return GGMLType.Q8_0;
    default: throw new Error(`rows of ${rowLength} do not fit blocks of ${typeTraits(type)!.blockSize}`);
  }
}

export function isShapeName(s: string): s is ShapeName {
  return Object.hasOwn(SHAPES, s);
}
export function isBenchDType(s: string): s is BenchDType {
  return Object.hasOwn(DTYPES, s);
}

export function benchModelPath(shape: ShapeName, dtype: BenchDType): string {
  return join(modelCacheDir, `${shape}-${dtype}.gguf`);
}

/** Path of the benchmark model, generating it first unless a current one is cached. */
export async function ensureBenchModel(shape: ShapeName, dtype: BenchDType): Promise<string> {
  const path = benchModelPath(shape, dtype);
  if (isCurrent(path)) return path;
  mkdirSync(modelCacheDir, { recursive: true });
  const partial = `${path}.partial-${process.pid}`;
  try {
    writeBenchModel(partial, SHAPES[shape], dtype, shape);
    renameSync(partial, path); // never leave a half-written file under the final name
  } catch (e) {
    rmSync(partial, { force: true });
    throw e;
  }
  return path;
}

function isCurrent(path: string): boolean {
  if (!existsSync(path)) return false;
  try {
    const f = GGUFFile.open(path);
    const version = f.get('vserve.bench.generator_version');
    f.close();
    return version === GENERATOR_VERSION;
  } catch {
    return false;
  }
}

function seedOf(text: string): number {
  let h = 2166136261; // FNV-1a
  for (let i = 0; i < text.length; i++) h = Math.imul(h ^ text.charCodeAt(i), 16777619);
  return h >>> 0;
}

function planModel(s: ModelShape, dtype: BenchDType, name: string): GGUFWriter {
  const { matrix, output, fileType } = DTYPES[dtype];
  const arch = s.arch ?? 'llama';
  const headDim = s.headDim ?? s.dim / s.heads;
  const qDim = headDim * s.heads;
  const kvDim = headDim * s.kvHeads;
  const w = new GGUFWriter();
  w.setString('general.architecture', arch);
  w.setString('general.name', `vserve bench ${name} ${dtype} (random weights)`);
  w.setUint32('general.file_type', fileType);
  if (matrix !== GGMLType.F32 && matrix !== GGMLType.F16) w.setUint32('general.quantization_version', 2);
  w.setUint32(`${arch}.context_length`, s.context);
  w.setUint32(`${arch}.embedding_length`, s.dim);
  w.setUint32(`${arch}.block_count`, s.layers);
  w.setUint32(`${arch}.feed_forward_length`, s.ffn);
  w.setUint32(`${arch}.rope.dimension_count`, headDim);
  w.setUint32(`${arch}.attention.head_count`, s.heads);
  w.setUint32(`${arch}.attention.head_count_kv`, s.kvHeads);
  if (s.headDim !== undefined) {
    w.setUint32(`${arch}.attention.key_length`, headDim);
    w.setUint32(`${arch}.attention.value_length`, headDim);
  }
  if (s.experts) {
    w.setUint32(`${arch}.expert_count`, s.experts.count);
    w.setUint32(`${arch}.expert_used_count`, s.experts.used);
    w.setUint32(`${arch}.expert_feed_forward_length`, s.experts.width);
  }
  w.setFloat32(`${arch}.attention.layer_norm_rms_epsilon`, s.normEps ?? 1e-5);
  w.setFloat32(`${arch}.rope.freq_base`, s.ropeBase);
  w.setUint32(`${arch}.vocab_size`, s.vocab);
  w.setUint32('vserve.bench.generator_version', GENERATOR_VERSION);
  if (s.note) w.setString('vserve.bench.note', s.note);
  for (const [key, value] of benchTokenizerMetadata(s.tokenizer ?? 'llama-spm', s.vocab)) w.set(key, inferTyped(value));

  // Tied, token_embd is the output projection and takes its type.
  w.addTensor('token_embd.weight', [s.dim, s.vocab], fitRow(s.tiedEmbeddings ? output : matrix, s.dim));
  for (let l = 0; l < s.layers; l++) {
    const p = `blk.${l}.`;
    const type = (role: MatrixRole, rowLength: number) =>
      fitRow(matrixType(dtype, role, { layer: l, layers: s.layers, gqa: s.heads / s.kvHeads }), rowLength);
    const bias = (role: MatrixRole, length: number) => {
      if (ARCHITECTURES[arch].qkvBias) w.addTensor(`${p}${role}.bias`, [length], GGMLType.F32);
    };
    w.addTensor(`${p}attn_norm.weight`, [s.dim], GGMLType.F32);
    w.addTensor(`${p}attn_q.weight`, [s.dim, qDim], type('attn_q', s.dim));
    bias('attn_q', qDim);
    w.addTensor(`${p}attn_k.weight`, [s.dim, kvDim], type('attn_k', s.dim));
    bias('attn_k', kvDim);
    w.addTensor(`${p}attn_v.weight`, [s.dim, kvDim], type('attn_v', s.dim));
    bias('attn_v', kvDim);
    if (s.qkNorm) {
      w.addTensor(`${p}attn_q_norm.weight`, [headDim], GGMLType.F32);
      w.addTensor(`${p}attn_k_norm.weight`, [headDim], GGMLType.F32);
    }
    w.addTensor(`${p}attn_output.weight`, [qDim, s.dim], type('attn_output', qDim));
    w.addTensor(`${p}ffn_norm.weight`, [s.dim], GGMLType.F32);
    const x = s.experts;
    if (x) {
      w.addTensor(`${p}ffn_gate_inp.weight`, [s.dim, x.count], GGMLType.F32);
      w.addTensor(`${p}ffn_gate_exps.weight`, [s.dim, x.width, x.count], type('ffn_gate', s.dim));
      w.addTensor(`${p}ffn_up_exps.weight`, [s.dim, x.width, x.count], type('ffn_up', s.dim));
      w.addTensor(`${p}ffn_down_exps.weight`, [x.width, s.dim, x.count], type('ffn_down', x.width));
    } else {
      w.addTensor(`${p}ffn_gate.weight`, [s.dim, s.ffn], type('ffn_gate', s.dim));
      w.addTensor(`${p}ffn_up.weight`, [s.dim, s.ffn], type('ffn_up', s.dim));
      w.addTensor(`${p}ffn_down.weight`, [s.ffn, s.dim], type('ffn_down', s.ffn));
    }
  }
  w.addTensor('output_norm.weight', [s.dim], GGMLType.F32);
  if (!s.tiedEmbeddings) w.addTensor('output.weight', [s.dim, s.vocab], fitRow(output, s.dim));
  return w;
}

const CHUNK_BYTES = 8 << 20;

/** Writes a random-weight model of any shape (the vocabulary size must suit the shape's tokenizer). */
export function writeBenchModel(path: string, shape: ModelShape, dtype: BenchDType, name: string, showProgress = true): void {
  const w = planModel(shape, dtype, name);
  const rng = new Xorshift128(seedOf(`${name}/${dtype}/${GENERATOR_VERSION}`));
  const progress = new ProgressBar(`${name}-${dtype}`, w.fileSize(), showProgress);
  progress.add(w.header().length);
  const words = new Uint32Array(CHUNK_BYTES / 4 + 1);
  const buffer = new Uint8Array(words.buffer);

  function* tensorData(t: TensorPlan): Iterable<Uint8Array> {
    if (t.dims.length === 1 && !t.name.endsWith('.bias')) {
      const bytes = new Uint8Array(normWeights(t.dims[0]!, rng).buffer);
      progress.add(bytes.length);
      yield bytes;
      return;
    }
    const { typeSize } = typeTraits(t.type)!;
    const blocksPerChunk = Math.floor(CHUNK_BYTES / typeSize);
    for (let done = 0; done < t.nBytes; ) {
      const n = Math.min(blocksPerChunk * typeSize, t.nBytes - done);
      const chunk = buffer.subarray(0, n);
      fillRandomBlocks(t.type, chunk, words.subarray(0, Math.ceil(n / 4)), rng, WEIGHT_STD);
      done += n;
      progress.add(n);
      yield chunk; // written before the next fill reuses the buffer
    }
  }

  w.writeFile(path, tensorData);
  progress.finish();
}

/** `npm run bench -- gen-model --shape tinyllama-1.1b --dtype q8_0`: prints the model's path. */
export async function genModelCommand(argv: readonly string[]): Promise<void> {
  const args = new BenchArgs(argv);
  const shape = args.string('shape', 'tinyllama-1.1b');
  const dtype = args.string('dtype', 'q8_0');
  if (!isShapeName(shape)) throw new Error(`unknown --shape "${shape}" (one of: ${Object.keys(SHAPES).join(', ')})`);
  if (!isBenchDType(dtype)) throw new Error(`unknown --dtype "${dtype}" (one of: ${Object.keys(DTYPES).join(', ')})`);
  console.log(await ensureBenchModel(shape, dtype));
}
