// Phi-3 / Phi-3.5 / Phi-4 (dense): Llama-like pre-norm layers with Q, K and V fused in attn_qkv and
// the MLP's gate and up halves fused in ffn_up (gate rows first), NeoX-style RoPE over the leading
// rope.dimension_count dims of each head, and LongRoPE factors for the 128K-context files.
import type { Architecture } from '../architecture.js';
import { DecoderLayer } from '../blocks/decoder-layer.js';
import { SwiGLUFeedForward } from '../blocks/feed-forward.js';
import { ModelConfigError, readCommonConfig } from '../model-config.js';
import { softmaxScale } from '../blocks/attention.js';
import { loadRopeOptions } from '../rope-scaling.js';
import { loadLlamaAttention, loadLlamaEnds } from './llama.js';

export const phi3: Architecture = {
  name: 'phi3',
  readConfig(m) {
    const c = readCommonConfig(m, 'neox');
    if (c.nHeads * c.headDim !== c.dim) {
      throw new ModelConfigError(`${m.where}: phi3 needs heads x head size = embedding length, the file has ${c.nHeads} x ${c.headDim} != ${c.dim}`);
    }
    // llama.cpp runs every phi3 file with full attention, sliding_window or not (its converter's
    // window values are not trusted there); vserve does the same, so the two agree, and says so.
    const window = m.has('attention.sliding_window') ? m.number('attention.sliding_window') : 0;
    if (window > 0 && window < c.contextLength) {
      process.emitWarning(`${m.where}: phi3.attention.sliding_window = ${window} is not applied (full attention, as llama.cpp runs phi3)`, 'ModelWarning');
    }
    return c;
  },
  load(w, c, at) {
    const ends = loadLlamaEnds(w, c);
    const rope = loadRopeOptions(w, c, at.contextSize);
    const layers = Array.from({ length: c.nLayers }, (_, l) => {
      const p = `blk.${l}.`;
      const [gate, up] = w.matrixParts(`${p}ffn_up.weight`, c.dim, [c.ffnDim, c.ffnDim]);
      return new DecoderLayer({
        inputNorm: w.vector(`${p}attn_norm.weight`, c.dim),
        // llama.cpp's phi3 graph scales Q by 1/sqrt(head size) rather than the scores.
        attention: loadLlamaAttention(w, c, l, rope, { queryScale: softmaxScale(c.headDim) }),
        ffnNorm: w.vector(`${p}ffn_norm.weight`, c.dim),
        ffn: new SwiGLUFeedForward(gate!, up!, w.matrix(`${p}ffn_down.weight`, c.ffnDim, c.dim)),
        normEps: c.normEps,
        dim: c.dim,
      });
    });
    return { ...ends, layers };
  },
};
