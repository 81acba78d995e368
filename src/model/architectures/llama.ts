// Llama (and the files that reuse its name: Mistral, TinyLlama, SmolLM, Llama 3.x with rope_freqs):
// pre-norm layers of GQA attention with adjacent-pair RoPE and a SwiGLU MLP. Optional QKV biases are
// loaded when present, and Q, K and V may be stored fused in one attn_qkv tensor. Mixtral-style files
// (llama.expert_count > 0) route each token to experts instead of one MLP.
// A file that declares llama.attention.sliding_window (Mistral 7B v0.1 was trained with 4096) attends
// through that window in every layer. llama.cpp reads no window for llama files and attends to every
// position, so the two differ once a sequence is longer than the window; converted Mistral files carry
// no window key, and then both attend globally.
import type { Architecture, ModelParts } from '../architecture.js';
import type { QueryTemperature } from '../attention-temperature.js';
import { AttentionBlock } from '../blocks/attention.js';
import { DecoderLayer } from '../blocks/decoder-layer.js';
import { type FeedForward, SwiGLUFeedForward } from '../blocks/feed-forward.js';
import { type ExpertConfig, loadMoEFeedForward, readExpertConfig } from '../experts.js';
import { type ModelConfig, readCommonConfig } from '../model-config.js';
import { loadRopeOptions, type RopeOptions } from '../rope-scaling.js';
import { readSlidingWindow } from '../sliding-window.js';
import type { WeightLoader } from '../weight-loader.js';

export interface LlamaAttentionOptions {
  /** Per-head RMS norms of Q and K before RoPE (Qwen3). */
  qkNorm?: boolean;
  /** Queries scaled by their position after RoPE (Mistral 3). */
  queryTemperature?: QueryTemperature;
  /** Queries scaled by this instead of the scores (Phi-3; see AttentionOptions.queryScale). */
  queryScale?: number;
}

/**
 * Layer l's attention under llama.cpp's names: attn_q/attn_k/attn_v, or one attn_qkv holding Q, K
 * and V stacked by rows in that order (Phi-3), each with optional biases.
 */
export function loadLlamaAttention(w: WeightLoader, c: ModelConfig, l: number, rope: RopeOptions, opts: LlamaAttentionOptions = {}): AttentionBlock {
  const p = `blk.${l}.`;
  const qDim = c.nHeads * c.headDim;
  const kvDim = c.nKVHeads * c.headDim;
  const fused = w.has(`${p}attn_qkv.weight`);
  const [wq, wk, wv] = fused
    ? w.matrixParts(`${p}attn_qkv.weight`, c.dim, [qDim, kvDim, kvDim])
    : [w.matrix(`${p}attn_q.weight`, c.dim, qDim), w.matrix(`${p}attn_k.weight`, c.dim, kvDim), w.matrix(`${p}attn_v.weight`, c.dim, kvDim)];
  const qkvBias = w.optionalVector(`${p}attn_qkv.bias`, qDim + 2 * kvDim);
  return new AttentionBlock(
    {
      wq: wq!,
      wk: wk!,
      wv: wv!,
      wo: w.matrix(`${p}attn_output.weight`, qDim, c.dim),
      bq: qkvBias?.subarray(0, qDim) ?? w.optionalVector(`${p}attn_q.bias`, qDim),
      bk: qkvBias?.subarray(qDim, qDim + kvDim) ?? w.optionalVector(`${p}attn_k.bias`, kvDim),
      bv: qkvBias?.subarray(qDim + kvDim) ?? w.optionalVector(`${p}attn_v.bias`, kvDim),
      qNorm: opts.qkNorm ? w.vector(`${p}attn_q_norm.weight`, c.headDim) : undefined,
      kNorm: opts.qkNorm ? w.vector(`${p}attn_k_norm.weight`, c.headDim) : undefined,
    },
    {
      ...c, ...rope,
      ...(c.slidingWindow !== undefined ? { window: c.slidingWindow } : {}),
      ...(opts.queryTemperature ? { queryTemperature: opts.queryTemperature } : {}),
      ...(opts.queryScale !== undefined ? { queryScale: opts.queryScale } : {}),
    },
  );
}

export interface LlamaLayerOptions extends LlamaAttentionOptions {
  /** The layer's MLP when it is not the dense SwiGLU one (experts). */
  ffn?: FeedForward;
}

/** The layer every Llama-like file has, under llama.cpp's tensor names. */
export function loadLlamaLayer(w: WeightLoader, c: ModelConfig, l: number, rope: RopeOptions, opts: LlamaLayerOptions = {}): DecoderLayer {
  const p = `blk.${l}.`;
  return new DecoderLayer({
    inputNorm: w.vector(`${p}attn_norm.weight`, c.dim),
    attention: loadLlamaAttention(w, c, l, rope, opts),
    ffnNorm: w.vector(`${p}ffn_norm.weight`, c.dim),
    ffn: opts.ffn ?? new SwiGLUFeedForward(
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
    const window = readSlidingWindow(m);
    return { ...c, experts: readExpertConfig(m, () => c.ffnDim, true), ...(window !== undefined ? { slidingWindow: window } : {}) };
  },
  load(w, c, at) {
    const ends = loadLlamaEnds(w, c);
    const rope = loadRopeOptions(w, c, at.contextSize);
    const x = c.experts;
    const layer = (l: number) => loadLlamaLayer(w, c, l, rope, x ? { ffn: loadMoEFeedForward(w, c, x, l) } : {});
    return { ...ends, layers: Array.from({ length: c.nLayers }, (_, l) => layer(l)) };
  },
};
