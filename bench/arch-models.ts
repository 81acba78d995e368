// Small random-weight GGUFs of every architecture vserve runs, with the bundled model's 512-token
// tokenizer, for checking each architecture against llama.cpp on the same file (bench/arch-parity.ts
// records llama.cpp's results; test/model/arch-parity.test.ts checks vserve against them). Files are a
// pure function of (spec, weight type): the same bytes on every machine, so recorded results stay valid.
//
// To make greedy decoding a sharp test, the output matrix is larger than the rest (logits far apart
// compared with the float differences between two correct implementations) while the layers still
// move the logits well past those differences.
import { join } from 'node:path';
import { GGUFFile } from '../src/model/gguf/reader.js';
import { GGMLType, typeTraits } from '../src/model/gguf/types.js';
import { GGUFWriter, inferTyped, type TensorPlan } from '../src/model/gguf/writer.js';
import { repoRoot } from './paths.js';
import { fillRandomBlocks, Xorshift128 } from './random-weights.js';

/** Bump when generated files change: recorded llama.cpp results name the version they were made from. */
export const ARCH_GENERATOR_VERSION = 1;
const TOKENIZER_SOURCE = join(repoRoot, 'models', 'stories260K.gguf');

export interface ArchShape {
  dim: number;
  ffn: number;
  layers: number;
  heads: number;
  kvHeads: number;
  headDim: number;
  context: number;
}

/** Rows are 256 wide so that every weight type (K-quants: 256-element super-blocks) fits. */
export const SMALL_SHAPE: ArchShape = { dim: 256, ffn: 512, layers: 2, heads: 4, kvHeads: 2, headDim: 64, context: 256 };

/** What a tensor is, which decides its values: norms ~1, biases and matrices small, the output large. */
export type TensorRole = 'matrix' | 'norm' | 'bias' | 'embedding' | 'output';

export interface TensorSpec {
  name: string;
  /** ggml order: dims[0] is the row length. */
  dims: number[];
  role: TensorRole;
  /** Multiplies the role's values (a norm's weights, a matrix's spread); e.g. to undo an architecture's embedding scale. */
  scale?: number;
}

export interface ArchSpec {
  /** The fixture's name (an architecture may have several specs, e.g. with and without a window). */
  name: string;
  /** general.architecture. */
  arch: string;
  /** Architecture-specific metadata beyond the common `<arch>.*` keys writeArchModel sets. */
  metadata?(w: GGUFWriter, s: ArchShape): void;
  tensors(s: ArchShape): TensorSpec[];
  shape?: ArchShape;
}

/** The tensors of a Llama layer under llama.cpp's names (q/k/v biases with `biases`). */
export function llamaLayerTensors(s: ArchShape, l: number, opts: { biases?: boolean } = {}): TensorSpec[] {
  const p = `blk.${l}.`;
  const qDim = s.heads * s.headDim, kvDim = s.kvHeads * s.headDim;
  return [
    { name: `${p}attn_norm.weight`, dims: [s.dim], role: 'norm' },
    { name: `${p}attn_q.weight`, dims: [s.dim, qDim], role: 'matrix' },
    { name: `${p}attn_k.weight`, dims: [s.dim, kvDim], role: 'matrix' },
    { name: `${p}attn_v.weight`, dims: [s.dim, kvDim], role: 'matrix' },
    ...(opts.biases ? ([
      { name: `${p}attn_q.bias`, dims: [qDim], role: 'bias' },
      { name: `${p}attn_k.bias`, dims: [kvDim], role: 'bias' },
      { name: `${p}attn_v.bias`, dims: [kvDim], role: 'bias' },
    ] as TensorSpec[]) : []),
    { name: `${p}attn_output.weight`, dims: [qDim, s.dim], role: 'matrix' },
    { name: `${p}ffn_norm.weight`, dims: [s.dim], role: 'norm' },
    { name: `${p}ffn_gate.weight`, dims: [s.dim, s.ffn], role: 'matrix' },
    { name: `${p}ffn_up.weight`, dims: [s.dim, s.ffn], role: 'matrix' },
    { name: `${p}ffn_down.weight`, dims: [s.ffn, s.dim], role: 'matrix' },
  ];
}

export const vocabSize = 512;

/** Embedding, final norm and output matrix (untied). */
export function endTensors(s: ArchShape): { first: TensorSpec[]; last: TensorSpec[] } {
  return {
    first: [{ name: 'token_embd.weight', dims: [s.dim, vocabSize], role: 'embedding' }],
    last: [
      { name: 'output_norm.weight', dims: [s.dim], role: 'norm' },
      { name: 'output.weight', dims: [s.dim, vocabSize], role: 'output' },
    ],
  };
}

function llamaLike(name: string, arch: string, biases = false): ArchSpec {
  return {
    name,
    arch,
    tensors(s) {
      const ends = endTensors(s);
      const layers = Array.from({ length: s.layers }, (_, l) => llamaLayerTensors(s, l, { biases })).flat();
      return [...ends.first, ...layers, ...ends.last];
    },
  };
}

/**
 * Gemma's layers: Llama's tensors, plus (Gemma 2/3) the post-attention and post-MLP norms and (Gemma 3)
 * the per-head QK norms. The output is tied to the embedding unless `output` (Gemma 3 files may have one).
 */
function gemmaLike(name: string, arch: string, o: { postNorms?: boolean; qkNorms?: boolean; output?: boolean; shape?: ArchShape; metadata?: ArchSpec['metadata'] }): ArchSpec {
  return {
    name,
    arch,
    ...(o.shape ? { shape: o.shape } : {}),
    ...(o.metadata ? { metadata: o.metadata } : {}),
    tensors(s) {
      const ends = endTensors(s);
      const layers = Array.from({ length: s.layers }, (_, l) => {
        const p = `blk.${l}.`;
        return [
          ...llamaLayerTensors(s, l),
          ...(o.postNorms ? [
            { name: `${p}post_attention_norm.weight`, dims: [s.dim], role: 'norm' },
            { name: `${p}post_ffw_norm.weight`, dims: [s.dim], role: 'norm' },
          ] as TensorSpec[] : []),
          ...(o.qkNorms ? [
            { name: `${p}attn_q_norm.weight`, dims: [s.headDim], role: 'norm' },
            { name: `${p}attn_k_norm.weight`, dims: [s.headDim], role: 'norm' },
          ] as TensorSpec[] : []),
        ];
      }).flat();
      // Gemma multiplies the embeddings by sqrt(dim): the embedding is that much smaller, so the residual
      // stream is as large as Llama's and the layers (not just the token) decide the next token; the
      // final norm is that much larger, so the logits (through the tied or shuffled embedding) are too.
      const embed = Math.sqrt(s.dim);
      const first = ends.first.map((t) => ({ ...t, scale: 1 / embed }));
      const last = ends.last.filter((t) => o.output || t.name !== 'output.weight').map((t) => (t.role === 'norm' ? { ...t, scale: embed } : t));
      return [...first, ...layers, ...last];
    },
  };
}

/** A window well inside the prompt (~16 tokens) + 64 generated tokens, so the local layers' edge moves. */
const TEST_WINDOW = 8;

/** Every spec with a recorded llama.cpp result; architecture helpers add theirs here. */
export const ARCH_SPECS: ArchSpec[] = [
  llamaLike('llama', 'llama'),
  llamaLike('qwen2', 'qwen2', true),
  gemmaLike('gemma', 'gemma', {}),
  // Layer 0 local (window 8, its own RoPE base), layer 1 global; both soft-caps well inside the scores' range.
  gemmaLike('gemma2', 'gemma2', {
    postNorms: true,
    metadata(w) {
      w.setUint32('gemma2.attention.sliding_window', TEST_WINDOW);
      w.setFloat32('gemma2.rope.freq_base_swa', 500);
      w.setFloat32('gemma2.attn_logit_softcapping', 3);
      w.setFloat32('gemma2.final_logit_softcapping', 15);
    },
  }),
  // Six layers: five local (window 8, RoPE base 10000, unscaled), one global (base 1e6, linear scaling x8).
  gemmaLike('gemma3', 'gemma3', {
    postNorms: true,
    qkNorms: true,
    output: true,
    shape: { ...SMALL_SHAPE, layers: 6 },
    metadata(w) {
      w.setUint32('gemma3.attention.sliding_window', TEST_WINDOW);
      w.setFloat32('gemma3.rope.freq_base', 1e6);
      w.setString('gemma3.rope.scaling.type', 'linear');
      w.setFloat32('gemma3.rope.scaling.factor', 8);
    },
  }),
];

/** Weight types a spec's matrices are written in for the parity fixtures. */
export const PARITY_WEIGHT_TYPES: readonly GGMLType[] = [GGMLType.F32, GGMLType.F16, GGMLType.Q8_0, GGMLType.Q4_0, GGMLType.Q4_K, GGMLType.Q6_K];

function seedOf(text: string): number {
  let h = 2166136261; // FNV-1a
  for (let i = 0; i < text.length; i++) h = Math.imul(h ^ text.charCodeAt(i), 16777619);
  return h >>> 0;
}

const STD: Record<TensorRole, number> = { matrix: 0.1, norm: 0, bias: 0.05, embedding: 0.5, output: 0.25 };

/** Writes spec's model with its matrices (embedding and output included) in `type`; returns the path. */
export function writeArchModel(path: string, spec: ArchSpec, type: GGMLType): string {
  const s = spec.shape ?? SMALL_SHAPE;
  const w = new GGUFWriter();
  const a = spec.arch;
  w.setString('general.architecture', a);
  w.setString('general.name', `vserve ${spec.name} test model (random weights)`);
  w.setUint32(`${a}.context_length`, s.context);
  w.setUint32(`${a}.embedding_length`, s.dim);
  w.setUint32(`${a}.block_count`, s.layers);
  w.setUint32(`${a}.feed_forward_length`, s.ffn);
  w.setUint32(`${a}.rope.dimension_count`, s.headDim);
  w.setUint32(`${a}.attention.head_count`, s.heads);
  w.setUint32(`${a}.attention.head_count_kv`, s.kvHeads);
  w.setUint32(`${a}.attention.key_length`, s.headDim);
  w.setUint32(`${a}.attention.value_length`, s.headDim);
  w.setFloat32(`${a}.attention.layer_norm_rms_epsilon`, 1e-5);
  w.setFloat32(`${a}.rope.freq_base`, 10000);
  w.setUint32('vserve.test.arch_generator_version', ARCH_GENERATOR_VERSION);
  spec.metadata?.(w, s);
  const vocab = GGUFFile.open(TOKENIZER_SOURCE);
  try {
    for (const [key, value] of vocab.metadata) if (key.startsWith('tokenizer.')) w.set(key, inferTyped(value));
  } finally {
    vocab.close();
  }
  const roles = new Map<string, TensorSpec>();
  for (const t of spec.tensors(s)) {
    const matrixType = t.dims.length > 1 && t.dims[0]! % (typeTraits(type)?.blockSize ?? 1) === 0 ? type : GGMLType.F32;
    w.addTensor(t.name, t.dims, t.role === 'norm' || t.role === 'bias' ? GGMLType.F32 : matrixType);
    roles.set(t.name, t);
  }
  const rng = new Xorshift128(seedOf(`${spec.name}/${type}/${ARCH_GENERATOR_VERSION}`));
  let embedding: Uint8Array | undefined;
  w.writeFile(path, (t: TensorPlan) => {
    const { role, scale = 1 } = roles.get(t.name)!;
    if (role === 'output' && embedding && embedding.length === t.nBytes) return [shuffledRows(embedding, t.dims[1]!)];
    const bytes = tensorBytes(t, role, scale, rng);
    if (role === 'embedding') embedding = bytes;
    return [bytes];
  });
  return path;
}

/**
 * The output matrix: the embedding's rows in another order (row r from row (r * 97 + 13) mod rows).
 * A hidden state near token t's embedding then scores one token far above the rest, as a trained
 * model's confident predictions do, so greedy decoding does not hinge on float noise; what the layers
 * add still decides which token that is.
 */
function shuffledRows(embedding: Uint8Array, rows: number): Uint8Array {
  const rowBytes = embedding.length / rows;
  const out = new Uint8Array(embedding.length);
  for (let r = 0; r < rows; r++) {
    const from = (r * 97 + 13) % rows;
    out.set(embedding.subarray(from * rowBytes, (from + 1) * rowBytes), r * rowBytes);
  }
  return out;
}

function tensorBytes(t: TensorPlan, role: TensorRole, scale: number, rng: Xorshift128): Uint8Array {
  if (role === 'norm' || role === 'bias') {
    const n = t.dims[0]!;
    const v = new Float32Array(n);
    const unit = () => rng.next() / 0x100000000 - 0.5;
    for (let i = 0; i < n; i++) v[i] = (role === 'norm' ? 1 + unit() * 0.4 : unit() * 2 * STD.bias) * scale;
    return new Uint8Array(v.buffer);
  }
  const words = new Uint32Array(Math.ceil(t.nBytes / 4));
  const bytes = new Uint8Array(words.buffer, 0, t.nBytes);
  fillRandomBlocks(t.type, bytes, words, rng, STD[role] * scale);
  return bytes;
}
