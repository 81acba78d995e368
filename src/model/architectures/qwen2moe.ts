// Qwen2-MoE (Qwen1.5-MoE, Qwen2-57B-A14B): Qwen2's attention (QKV biases, NeoX RoPE) with a mixture of
// experts whose chosen probabilities are used as they are (not renormalised), plus a shared SwiGLU
// expert every token runs, scaled by sigmoid(ffn_gate_inp_shexp · h).
import type { Architecture } from '../architecture.js';
import { SwiGLUFeedForward } from '../blocks/feed-forward.js';
import { type ExpertConfig, expertWidthOf, loadMoEFeedForward, readExpertConfig } from '../experts.js';
import { type ModelConfig, ModelConfigError, readCommonConfig } from '../model-config.js';
import { loadRopeOptions } from '../rope-scaling.js';
import { loadLlamaEnds, loadLlamaLayer } from './llama.js';

export interface Qwen2MoEConfig extends ModelConfig {
  experts: ExpertConfig;
  /** The shared expert's hidden width (expert_shared_feed_forward_length, else feed_forward_length). */
  sharedWidth: number;
}

export const qwen2moe: Architecture<Qwen2MoEConfig> = {
  name: 'qwen2moe',
  readConfig(m) {
    const c = readCommonConfig(m, 'neox');
    const experts = readExpertConfig(m, expertWidthOf(m, c.ffnDim), false);
    if (!experts) throw new ModelConfigError(`${m.where}: qwen2moe.expert_count is missing or 0`);
    return { ...c, experts, sharedWidth: m.size('expert_shared_feed_forward_length', c.ffnDim) };
  },
  load(w, c, at) {
    const rope = loadRopeOptions(w, c, at.contextSize);
    const layer = (l: number) => {
      const p = `blk.${l}.`;
      const sw = c.sharedWidth;
      const shared = {
        ffn: new SwiGLUFeedForward(w.matrix(`${p}ffn_gate_shexp.weight`, c.dim, sw), w.matrix(`${p}ffn_up_shexp.weight`, c.dim, sw), w.matrix(`${p}ffn_down_shexp.weight`, sw, c.dim)),
        gate: w.vector(`${p}ffn_gate_inp_shexp.weight`, c.dim),
      };
      return loadLlamaLayer(w, c, l, rope, { ffn: loadMoEFeedForward(w, c, c.experts, l, shared) });
    };
    return { ...loadLlamaEnds(w, c), layers: Array.from({ length: c.nLayers }, (_, l) => layer(l)) };
  },
};
