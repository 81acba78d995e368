// Gemma: pre-norm layers with a GeGLU MLP (tanh GELU), NeoX-style RoPE, embeddings scaled by sqrt(dim)
// and the output tied to the embedding. Gemma's RMSNorm multiplies by (1 + w); llama.cpp's converter
// stores 1 + w in the file, so the norms here are plain RMS norms, as in llama.cpp.
//
// Gemma 2 and 3 (gemma2.ts, gemma3.ts) load the same way from a richer config: post-attention and post-MLP
// norms, local (sliding-window) layers with their own RoPE, soft-caps and QK norms.
import type { Architecture, ModelParts } from '../architecture.js';
import { AttentionBlock, softmaxScale } from '../blocks/attention.js';
import { DecoderLayer } from '../blocks/decoder-layer.js';
import { GeGLUFeedForward } from '../blocks/feed-forward.js';
import { type MetadataReader, type ModelConfig, ModelConfigError, readCommonConfig } from '../model-config.js';
import type { WeightLoader } from '../weight-loader.js';

export interface GemmaConfig extends ModelConfig {
  /** Per layer: attends through the sliding window (a local layer) rather than to every position. */
  windowed: boolean[];
  /** RoPE of the local layers (the global ones use ropeFreqBase / ropeFreqScale). */
  localRopeBase: number;
  localRopeScale: number;
  /** What the queries are multiplied by (1/sqrt(query_pre_attn_scalar)); llama.cpp scales Q, not the scores. */
  attentionScale: number;
  attnSoftcap?: number;
  finalSoftcap?: number;
  /** Gemma 2/3: norms on each branch's output before the residual add. */
  postNorms: boolean;
  /** Gemma 3: per-head RMS norms of Q and K. */
  qkNorms: boolean;
}

/**
 * The common keys with NeoX RoPE, checked for what Gemma files must not vary: values as wide as keys,
 * and RoPE scaling that is linear or none (llama.cpp then divides positions by rope.scaling.factor).
 */
export function readGemmaCommon(m: MetadataReader): ModelConfig {
  const c = readCommonConfig(m, 'neox');
  if (m.has('attention.value_length') && m.number('attention.value_length') !== c.headDim) {
    throw new ModelConfigError(`${m.where}: ${m.arch}.attention.value_length ${m.number('attention.value_length')} differs from the key length ${c.headDim}, which vserve does not run`);
  }
  const type = m.string('rope.scaling.type');
  if (type !== undefined && type !== 'linear' && type !== 'none') {
    throw new ModelConfigError(`${m.where}: ${m.arch}.rope.scaling.type "${type}" is not supported (vserve runs linear RoPE scaling)`);
  }
  const factor = m.has('rope.scaling.factor') ? m.number('rope.scaling.factor') : 0;
  if (factor < 0) throw new ModelConfigError(`${m.where}: ${m.arch}.rope.scaling.factor ${factor} is negative`);
  return { ...c, ropeFreqScale: factor === 0 ? 1 : 1 / factor };
}

export const gemma: Architecture<GemmaConfig> = {
  name: 'gemma',
  readConfig(m) {
    const c = readGemmaCommon(m);
    return {
      ...c, windowed: new Array<boolean>(c.nLayers).fill(false), localRopeBase: c.ropeFreqBase, localRopeScale: c.ropeFreqScale,
      attentionScale: softmaxScale(c.headDim), postNorms: false, qkNorms: false,
    };
  },
  load: loadGemma,
};

export function loadGemma(w: WeightLoader, c: GemmaConfig): ModelParts {
  const tokenEmbd = w.matrix('token_embd.weight', c.dim, c.vocabSize);
  return {
    tokenEmbd,
    embedScale: Math.sqrt(c.dim),
    layers: Array.from({ length: c.nLayers }, (_, l) => loadGemmaLayer(w, c, l)),
    outputNorm: w.vector('output_norm.weight', c.dim),
    // Gemma 3 files may carry their own output matrix; Gemma and Gemma 2 always tie it.
    output: (c.arch === 'gemma3' ? w.optionalMatrix('output.weight', c.dim, c.vocabSize) : undefined) ?? tokenEmbd,
    ...(c.finalSoftcap !== undefined ? { logitSoftcap: c.finalSoftcap } : {}),
  };
}

function loadGemmaLayer(w: WeightLoader, c: GemmaConfig, l: number): DecoderLayer {
  const p = `blk.${l}.`;
  const qDim = c.nHeads * c.headDim;
  const kvDim = c.nKVHeads * c.headDim;
  const local = c.windowed[l]!;
  const attention = new AttentionBlock(
    {
      wq: w.matrix(`${p}attn_q.weight`, c.dim, qDim),
      wk: w.matrix(`${p}attn_k.weight`, c.dim, kvDim),
      wv: w.matrix(`${p}attn_v.weight`, c.dim, kvDim),
      wo: w.matrix(`${p}attn_output.weight`, qDim, c.dim),
      ...(c.qkNorms ? { qNorm: w.vector(`${p}attn_q_norm.weight`, c.headDim), kNorm: w.vector(`${p}attn_k_norm.weight`, c.headDim) } : {}),
    },
    {
      ...c,
      ropeFreqBase: local ? c.localRopeBase : c.ropeFreqBase,
      ropeFreqScale: local ? c.localRopeScale : c.ropeFreqScale,
      queryScale: c.attentionScale,
      ...(local ? { window: c.slidingWindow! } : {}),
      ...(c.attnSoftcap !== undefined ? { softcap: c.attnSoftcap } : {}),
    },
  );
  return new DecoderLayer({
    inputNorm: w.vector(`${p}attn_norm.weight`, c.dim),
    attention,
    ffnNorm: w.vector(`${p}ffn_norm.weight`, c.dim),
    ffn: new GeGLUFeedForward(
      w.matrix(`${p}ffn_gate.weight`, c.dim, c.ffnDim),
      w.matrix(`${p}ffn_up.weight`, c.dim, c.ffnDim),
      w.matrix(`${p}ffn_down.weight`, c.ffnDim, c.dim),
    ),
    ...(c.postNorms ? { postAttentionNorm: w.vector(`${p}post_attention_norm.weight`, c.dim), postFfnNorm: w.vector(`${p}post_ffw_norm.weight`, c.dim) } : {}),
    normEps: c.normEps,
    dim: c.dim,
  });
}

/**
 * llama.cpp's softmax scale for Gemma 2/3: 1/sqrt(head size), except for the 27B models (known by their
 * layer count, as the file has no query_pre_attn_scalar) where it is 1/sqrt(dim / heads).
 */
export function gemmaAttentionScale(c: ModelConfig, layersOf27B: number): number {
  return softmaxScale(c.nLayers === layersOf27B ? Math.floor(c.dim / c.nHeads) : c.headDim);
}
