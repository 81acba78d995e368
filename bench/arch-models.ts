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

/**
 * What a tensor is, which decides its values: norms ~1, biases and matrices small, the output large,
 * RoPE frequency factors (rope_freqs, LongRoPE) between 1 and 4, all in f32 like norms. A 'router'
 * (MoE expert router, shared-expert gate) is a matrix kept in F32 as llama.cpp's quantizer keeps
 * ffn_gate_inp, so which experts a token goes to does not hinge on quantization noise.
 */
export type TensorRole = 'matrix' | 'norm' | 'bias' | 'embedding' | 'output' | 'ropeFactors' | 'router';

export interface TensorSpec {
  name: string;
  /** ggml order: dims[0] is the row length; a third dim stacks matrices (MoE experts, [cols, rows, experts]). */
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

/** Qwen3: Llama's layers plus per-head Q/K norms, with a head size that is not dim / heads. */
function qwen3Spec(): ArchSpec {
  return {
    name: 'qwen3',
    arch: 'qwen3',
    shape: { ...SMALL_SHAPE, headDim: 128 },
    tensors(s) {
      const ends = endTensors(s);
      const layers = Array.from({ length: s.layers }, (_, l) => [
        ...llamaLayerTensors(s, l),
        { name: `blk.${l}.attn_q_norm.weight`, dims: [s.headDim], role: 'norm' },
        { name: `blk.${l}.attn_k_norm.weight`, dims: [s.headDim], role: 'norm' },
      ] as TensorSpec[]).flat();
      return [...ends.first, ...layers, ...ends.last];
    },
  };
}

export interface MoEShape {
  experts: number;
  used: number;
  /** Each expert's hidden width. */
  width: number;
  /** The shared expert's width (Qwen2-MoE), if the layers have one. */
  sharedWidth?: number;
}

/** A layer's router and stacked experts (3-D [cols, rows, experts]), plus a gated shared expert with sharedWidth. */
export function moeTensors(s: ArchShape, l: number, x: MoEShape): TensorSpec[] {
  const p = `blk.${l}.`;
  const shared = x.sharedWidth;
  return [
    { name: `${p}ffn_gate_inp.weight`, dims: [s.dim, x.experts], role: 'router' },
    { name: `${p}ffn_gate_exps.weight`, dims: [s.dim, x.width, x.experts], role: 'matrix' },
    { name: `${p}ffn_up_exps.weight`, dims: [s.dim, x.width, x.experts], role: 'matrix' },
    { name: `${p}ffn_down_exps.weight`, dims: [x.width, s.dim, x.experts], role: 'matrix' },
    ...(shared ? ([
      { name: `${p}ffn_gate_inp_shexp.weight`, dims: [s.dim], role: 'router' },
      { name: `${p}ffn_gate_shexp.weight`, dims: [s.dim, shared], role: 'matrix' },
      { name: `${p}ffn_up_shexp.weight`, dims: [s.dim, shared], role: 'matrix' },
      { name: `${p}ffn_down_shexp.weight`, dims: [shared, s.dim], role: 'matrix' },
    ] as TensorSpec[]) : []),
  ];
}

/**
 * A Llama-like model whose MLPs are experts: Mixtral (llama), Qwen2-MoE, Qwen3-MoE. `metadata` writes the
 * architecture's own expert keys beyond expert_count and expert_used_count.
 */
function moeLike(name: string, arch: string, x: MoEShape, opts: { biases?: boolean; qkNorm?: boolean; shape?: ArchShape; metadata?: ArchSpec['metadata'] }): ArchSpec {
  return {
    name,
    arch,
    shape: opts.shape,
    metadata(w, s) {
      w.setUint32(`${arch}.expert_count`, x.experts);
      w.setUint32(`${arch}.expert_used_count`, x.used);
      opts.metadata?.(w, s);
    },
    tensors(s) {
      const ends = endTensors(s);
      const layers = Array.from({ length: s.layers }, (_, l) => [
        ...llamaLayerTensors(s, l, { biases: opts.biases }).filter((t) => !/\.ffn_(gate|up|down)\.weight$/.test(t.name)),
        ...(opts.qkNorm ? ([
          { name: `blk.${l}.attn_q_norm.weight`, dims: [s.headDim], role: 'norm' },
          { name: `blk.${l}.attn_k_norm.weight`, dims: [s.headDim], role: 'norm' },
        ] as TensorSpec[]) : []),
        ...moeTensors(s, l, x),
      ]).flat();
      return [...ends.first, ...layers, ...ends.last];
    },
  };
}

/**
 * Phi-3 with LongRoPE as the 128K files carry it: fused attn_qkv and gate+up, partial rotary dims,
 * long and short factors, and an original context (128) below the parity context (256), so both
 * engines must pick the long factors, with the converter's attention factor for 256 / 128.
 */
function phi3Spec(): ArchSpec {
  const ropeDim = 48;
  return {
    name: 'phi3',
    arch: 'phi3',
    metadata(w, s) {
      // llama.cpp gives Phi-3's special tokens (<|endoftext|>, ...) attributes when the name says
      // phi3, and fails on a vocabulary without them, such as the bundled one.
      w.setString('general.name', 'vserve fused-QKV LongRoPE test model (random weights)');
      w.setUint32('phi3.rope.dimension_count', ropeDim);
      w.setUint32('phi3.rope.scaling.original_context_length', 128);
      w.setFloat32('phi3.rope.scaling.attn_factor', Math.sqrt(1 + Math.log(s.context / 128) / Math.log(128)));
      w.setUint32('phi3.attention.sliding_window', 2047);
    },
    tensors(s) {
      const ends = endTensors(s);
      const kvDim = s.kvHeads * s.headDim;
      const layers = Array.from({ length: s.layers }, (_, l) => {
        const p = `blk.${l}.`;
        return [
          { name: `${p}attn_norm.weight`, dims: [s.dim], role: 'norm' },
          { name: `${p}attn_qkv.weight`, dims: [s.dim, s.dim + 2 * kvDim], role: 'matrix' },
          { name: `${p}attn_output.weight`, dims: [s.dim, s.dim], role: 'matrix' },
          { name: `${p}ffn_norm.weight`, dims: [s.dim], role: 'norm' },
          { name: `${p}ffn_up.weight`, dims: [s.dim, 2 * s.ffn], role: 'matrix' },
          { name: `${p}ffn_down.weight`, dims: [s.ffn, s.dim], role: 'matrix' },
        ] as TensorSpec[];
      }).flat();
      const factors: TensorSpec[] = [
        { name: 'rope_factors_long.weight', dims: [ropeDim / 2], role: 'ropeFactors' },
        { name: 'rope_factors_short.weight', dims: [ropeDim / 2], role: 'ropeFactors' },
      ];
      return [...ends.first, ...factors, ...layers, ...ends.last];
    },
  };
}

/** Llama 3.1-style RoPE: per-pair frequency divisors in rope_freqs.weight. */
function llama3RopeSpec(): ArchSpec {
  const base = llamaLike('llama3-rope', 'llama');
  return {
    ...base,
    metadata(w) {
      w.setFloat32('llama.rope.freq_base', 500000);
    },
    tensors: (s) => [{ name: 'rope_freqs.weight', dims: [s.headDim / 2], role: 'ropeFactors' }, ...base.tensors(s)],
  };
}

/** SmolLM-style Llama: tied embeddings, no output.weight. */
function smollmSpec(): ArchSpec {
  const base = llamaLike('smollm', 'llama');
  return { ...base, tensors: (s) => base.tensors(s).filter((t) => t.name !== 'output.weight') };
}

/** Qwen2.5 with YaRN as its long-context files set it: factor 4 over an original context of 64. */
function qwen2YarnSpec(): ArchSpec {
  const base = llamaLike('qwen2-yarn', 'qwen2', true);
  return {
    ...base,
    metadata(w) {
      w.setString('qwen2.rope.scaling.type', 'yarn');
      w.setFloat32('qwen2.rope.scaling.factor', 4);
      w.setUint32('qwen2.rope.scaling.original_context_length', 64);
    },
  };
}

/**
 * Ministral 3's metadata (RoPE base 1e6, YaRN with mscale_all_dim 1, attention temperature beta 0.1),
 * its long context shrunk to the test's: YaRN x32 over an original context of 8, so the temperature
 * steps up every 8 positions and the prompt and the 64 generated tokens cross many steps. Heads are
 * wider than dim / heads. (Original contexts of 16 and 32 gave a quantized file whose top token sits
 * in a near-tie that activation quantization flips, in llama.cpp and vserve alike.)
 */
function mistral3Spec(): ArchSpec {
  const base = llamaLike('mistral3', 'mistral3');
  return {
    ...base,
    shape: { ...SMALL_SHAPE, headDim: 128 },
    metadata(w) {
      w.setFloat32('mistral3.rope.freq_base', 1e6);
      w.setString('mistral3.rope.scaling.type', 'yarn');
      w.setFloat32('mistral3.rope.scaling.factor', 32);
      w.setUint32('mistral3.rope.scaling.original_context_length', 8);
      w.setFloat32('mistral3.rope.scaling.yarn_beta_fast', 32);
      w.setFloat32('mistral3.rope.scaling.yarn_beta_slow', 1);
      w.setFloat32('mistral3.rope.scaling.yarn_log_multiplier', 1);
      w.setFloat32('mistral3.attention.temperature_scale', 0.1);
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
  qwen3Spec(),
  phi3Spec(),
  llama3RopeSpec(),
  smollmSpec(),
  qwen2YarnSpec(),
  // Routing is discontinuous: where a token's k-th and next expert nearly tie, float noise between two
  // correct engines picks either, and that token's output changes wholesale. The expert counts below
  // are ones whose recorded runs have no such flip (the prompt still sends several tokens to each expert).
  // Mixtral: 8 experts, top 2, each feed_forward_length wide.
  moeLike('mixtral', 'llama', { experts: 8, used: 2, width: 512 }, {}),
  // Expert width from the default feed_forward_length / expert_used_count (512 / 2).
  moeLike('qwen3moe', 'qwen3moe', { experts: 4, used: 2, width: 256 }, { qkNorm: true }),
  moeLike('qwen2moe', 'qwen2moe', { experts: 4, used: 2, width: 256, sharedWidth: 512 }, {
    biases: true,
    metadata(w) {
      w.setUint32('qwen2moe.expert_feed_forward_length', 256);
      w.setUint32('qwen2moe.expert_shared_feed_forward_length', 512);
    },
  }),
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
  mistral3Spec(),
];

/** Weight types a spec's matrices are written in for the parity fixtures. */
export const PARITY_WEIGHT_TYPES: readonly GGMLType[] = [
  GGMLType.F32, GGMLType.F16, GGMLType.Q8_0, GGMLType.Q4_0, GGMLType.Q4_1, GGMLType.Q5_0, GGMLType.Q5_1, GGMLType.IQ4_NL,
  GGMLType.Q2_K, GGMLType.Q3_K, GGMLType.Q4_K, GGMLType.Q5_K, GGMLType.Q6_K, GGMLType.IQ4_XS,
];

function seedOf(text: string): number {
  let h = 2166136261; // FNV-1a
  for (let i = 0; i < text.length; i++) h = Math.imul(h ^ text.charCodeAt(i), 16777619);
  return h >>> 0;
}

const STD: Record<TensorRole, number> = { matrix: 0.1, norm: 0, bias: 0.05, embedding: 0.5, output: 0.25, ropeFactors: 0, router: 0.1 };

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
    w.addTensor(t.name, t.dims, t.role === 'norm' || t.role === 'bias' || t.role === 'ropeFactors' || t.role === 'router' ? GGMLType.F32 : matrixType);
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
  if (role === 'norm' || role === 'bias' || role === 'ropeFactors') {
    const n = t.dims[0]!;
    const v = new Float32Array(n);
    const unit = () => rng.next() / 0x100000000 - 0.5;
    for (let i = 0; i < n; i++) v[i] = (role === 'norm' ? 1 + unit() * 0.4 : role === 'ropeFactors' ? 2.5 + unit() * 3 : unit() * 2 * STD.bias) * scale;
    return new Uint8Array(v.buffer);
  }
  const words = new Uint32Array(Math.ceil(t.nBytes / 4));
  const bytes = new Uint8Array(words.buffer, 0, t.nBytes);
  fillRandomBlocks(t.type, bytes, words, rng, STD[role] * scale);
  return bytes;
}
