// Llama (and the files that reuse its name: Mistral, TinyLlama, SmolLM): pre-norm layers of GQA
// attention with adjacent-pair RoPE and a SwiGLU MLP. Optional QKV biases are loaded when present.
// A file that declares llama.attention.sliding_window (Mistral 7B v0.1 was trained with 4096) attends
// through that window in every layer. llama.cpp reads no window for llama files and attends to every
// position, so the two differ once a sequence is longer than the window; converted Mistral files carry
// no window key, and then both attend globally.
import type { Architecture, ModelParts } from '../architecture.js';
import { AttentionBlock } from '../blocks/attention.js';
import { DecoderLayer } from '../blocks/decoder-layer.js';
import { SwiGLUFeedForward } from '../blocks/feed-forward.js';
import { type ModelConfig, readCommonConfig } from '../model-config.js';
import { readSlidingWindow } from '../sliding-window.js';
import type { WeightLoader } from '../weight-loader.js';

/** The layer every Llama-like file has, under llama.cpp's tensor names. */
export function loadLlamaLayer(w: WeightLoader, c: ModelConfig, l: number): DecoderLayer {
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
    },
    { ...c, ...(c.slidingWindow !== undefined ? { window: c.slidingWindow } : {}) },
  );
  return new DecoderLayer({
    inputNorm: w.vector(`${p}attn_norm.weight`, c.dim),
    attention,
    ffnNorm: w.vector(`${p}ffn_norm.weight`, c.dim),
    ffn: new SwiGLUFeedForward(
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

export const llama: Architecture = {
  name: 'llama',
  readConfig(m) {
    const window = readSlidingWindow(m);
    return { ...readCommonConfig(m, 'normal'), ...(window !== undefined ? { slidingWindow: window } : {}) };
  },
  load(w, c) {
    const ends = loadLlamaEnds(w, c);
    return { ...ends, layers: Array.from({ length: c.nLayers }, (_, l) => loadLlamaLayer(w, c, l)) };
  },
};
