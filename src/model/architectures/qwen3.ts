// Qwen3 (dense): Qwen2's layers without QKV biases, with per-head RMS norms of Q and K before
// NeoX-style RoPE; the head size comes from attention.key_length and need not be dim / heads.
import type { Architecture } from '../architecture.js';
import { readCommonConfig } from '../model-config.js';
import { loadRopeOptions } from '../rope-scaling.js';
import { loadLlamaEnds, loadLlamaLayer } from './llama.js';

export const qwen3: Architecture = {
  name: 'qwen3',
  readConfig: (m) => readCommonConfig(m, 'neox'),
  load(w, c, at) {
    const ends = loadLlamaEnds(w, c);
    const rope = loadRopeOptions(w, c, at.contextSize);
    return { ...ends, layers: Array.from({ length: c.nLayers }, (_, l) => loadLlamaLayer(w, c, l, rope, { qkNorm: true })) };
  },
};
