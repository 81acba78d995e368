// Mistral 3 text models (Ministral 3 3B/8B/14B, Devstral Small 2): Llama's layers with adjacent-pair
// RoPE, a head size from attention.key_length (wider than dim / heads), YaRN whose magnitude follows
// rope.scaling.yarn_log_multiplier (mscale_all_dim; 1 in these files, so cos and sin keep their size),
// and Llama 4's attention temperature: queries past each original context's worth of positions are
// scaled up (attention-temperature.ts). The 3B file ties its output to the embedding; the larger ones
// carry output.weight. llama.cpp's loader also takes mixture-of-experts files under this name; none
// is published, so they are refused rather than run by guesswork.
import type { Architecture } from '../architecture.js';
import { type QueryTemperature, readQueryTemperature } from '../attention-temperature.js';
import { type ModelConfig, ModelConfigError, readCommonConfig } from '../model-config.js';
import { loadRopeOptions } from '../rope-scaling.js';
import { loadLlamaEnds, loadLlamaLayer } from './llama.js';

export interface Mistral3Config extends ModelConfig {
  queryTemperature?: QueryTemperature;
}

export const mistral3: Architecture<Mistral3Config> = {
  name: 'mistral3',
  readConfig(m) {
    const c = readCommonConfig(m, 'normal', { yarnLogMultiplier: true });
    if (c.ropeDim !== c.headDim) throw new ModelConfigError(`${m.where}: mistral3 rotates whole heads; rope.dimension_count ${c.ropeDim} differs from the head size ${c.headDim}`);
    if (m.has('attention.value_length') && m.number('attention.value_length') !== c.headDim) {
      throw new ModelConfigError(`${m.where}: mistral3.attention.value_length ${m.number('attention.value_length')} differs from the key length ${c.headDim}`);
    }
    if (m.has('expert_count') && m.number('expert_count') > 0) throw new ModelConfigError(`${m.where}: mixture-of-experts mistral3 files are not supported`);
    const queryTemperature = readQueryTemperature(m, c.ropeScaling.originalContext);
    return { ...c, ...(queryTemperature ? { queryTemperature } : {}) };
  },
  load(w, c, at) {
    const ends = loadLlamaEnds(w, c);
    const rope = loadRopeOptions(w, c, at.contextSize);
    const opts = c.queryTemperature ? { queryTemperature: c.queryTemperature } : {};
    return { ...ends, layers: Array.from({ length: c.nLayers }, (_, l) => loadLlamaLayer(w, c, l, rope, opts)) };
  },
};
