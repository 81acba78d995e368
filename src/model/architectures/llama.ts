// Llama (and the files that reuse its name: Mistral, TinyLlama, SmolLM): pre-norm layers of GQA
// attention with adjacent-pair RoPE and a SwiGLU MLP. Optional QKV biases are loaded when present.
// Mixtral-style files (llama.expert_count > 0) route each token to experts instead of one MLP.
import type { Architecture, ModelParts } from '../architecture.js';
import { AttentionBlock } from '../blocks/attention.js';
import { DecoderLayer } from '../blocks/decoder-layer.js';
import { type FeedForward, SwiGLUFeedForward } from '../blocks/feed-forward.js';
import { type ExpertConfig, loadMoEFeedForward, readExpertConfig } from '../experts.js';
import { type ModelConfig, readCommonConfig } from '../model-config.js';
import type { WeightLoader } from '../weight-loader.js';

export interface LlamaLayerOptions {
  /** The layer's MLP when it is not the dense SwiGLU one (experts). */
  ffn?: FeedForward;
  /** Per-head RMS norms of Q and K (attn_q_norm, attn_k_norm), as Qwen3 has. */
  qkNorm?: boolean;
}

/** The layer every Llama-like file has, under llama.cpp's tensor names. */
export function loadLlamaLayer(w: WeightLoader, c: ModelConfig, l: number, o: LlamaLayerOptions = {}): DecoderLayer {
  const p = `blk.${l}.`;
  const qDim = c.nHeads * c.headDim;
  const kvDim = c.nKVHeads * c.headDim;
  const attention = new AttentionBlock(
    {
      wq: w.matrix(`${p}attn_q.weight`, c.dim, qDim),
      wk: w.matrix(`${p}attn_k.weight`, c.dim, kvDim),
      wv: w.matrix(`${p}attn_v.weight`, c.dim, kvDim),
      wo: w.matrix(`${p}attn_output.weight`, qDim, c.dim),
      bq: w.optionalVector(`${p}attn_q.bias`, qDim),
      bk: w.optionalVector(`${p}attn_k.bias`, kvDim),
      bv: w.optionalVector(`${p}attn_v.bias`, kvDim),
      ...(o.qkNorm ? { qNorm: w.vector(`${p}attn_q_norm.weight`, c.headDim), kNorm: w.vector(`${p}attn_k_norm.weight`, c.headDim) } : {}),
    },
    c,
  );
  return new DecoderLayer({
    inputNorm: w.vector(`${p}attn_norm.weight`, c.dim),
    attention,
    ffnNorm: w.vector(`${p}ffn_norm.weight`, c.dim),
    ffn: o.ffn ?? new SwiGLUFeedForward(
      w.matrix(`${p}ffn_gate.weight`, c.dim, c.ffnDim),
      w.matrix(`${p}ffn_up.weight`, c.dim, c.ffnDim),
      w.matrix(`${p}ffn_down.weight`, c.ffnDim, c.dim),
    ),
    normEps: c.normEps,
    dim: c.dim,
  });
}

/** Embedding, final norm and output projection; files with tied embeddings have no output.weight. */
export function loadLlamaEnds(w: WeightLoader, c: ModelConfig): Omit<ModelParts, 'layers'> {
  const tokenEmbd = w.matrix('token_embd.weight', c.dim, c.vocabSize);
  const output = w.optionalMatrix('output.weight', c.dim, c.vocabSize) ?? tokenEmbd;
  return { tokenEmbd, outputNorm: w.vector('output_norm.weight', c.dim), output };
}

export interface LlamaConfig extends ModelConfig {
  /** Mixtral-style experts; each one is feed_forward_length wide and the chosen weights sum to 1. */
  experts?: ExpertConfig;
}

export const llama: Architecture<LlamaConfig> = {
  name: 'llama',
  readConfig(m) {
    const c = readCommonConfig(m, 'normal');
    return { ...c, experts: readExpertConfig(m, () => c.ffnDim, true) };
  },
  load(w, c) {
    const ends = loadLlamaEnds(w, c);
    const x = c.experts;
    const layer = (l: number) => loadLlamaLayer(w, c, l, x ? { ffn: loadMoEFeedForward(w, c, x, l) } : {});
    return { ...ends, layers: Array.from({ length: c.nLayers }, (_, l) => layer(l)) };
  },
};
