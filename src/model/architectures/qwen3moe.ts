// Qwen3-MoE: Qwen3's attention (per-head QK norms, NeoX RoPE, no biases) with every layer's MLP a
// mixture of experts; the chosen experts' probabilities are renormalised to sum to 1.
import type { Architecture } from '../architecture.js';
import { type ExpertConfig, expertWidthOf, loadMoEFeedForward, readExpertConfig } from '../experts.js';
import { type ModelConfig, ModelConfigError, readCommonConfig } from '../model-config.js';
import { loadRopeOptions } from '../rope-scaling.js';
import { loadLlamaEnds, loadLlamaLayer } from './llama.js';

export interface Qwen3MoEConfig extends ModelConfig {
  experts: ExpertConfig;
}

export const qwen3moe: Architecture<Qwen3MoEConfig> = {
  name: 'qwen3moe',
  readConfig(m) {
    const c = readCommonConfig(m, 'neox');
    const experts = readExpertConfig(m, expertWidthOf(m, c.ffnDim), true);
    if (!experts) throw new ModelConfigError(`${m.where}: qwen3moe.expert_count is missing or 0`);
    return { ...c, experts };
  },
  load(w, c, at) {
    const rope = loadRopeOptions(w, c, at.contextSize);
    const layer = (l: number) => loadLlamaLayer(w, c, l, rope, { qkNorm: true, ffn: loadMoEFeedForward(w, c, c.experts, l) });
    return { ...loadLlamaEnds(w, c), layers: Array.from({ length: c.nLayers }, (_, l) => layer(l)) };
  },
};
