// Qwen2 / Qwen2.5: Llama's layers with QKV biases and NeoX-style (split-half) RoPE.
import type { Architecture } from '../architecture.js';
import { readCommonConfig } from '../model-config.js';
import { llama } from './llama.js';

export const qwen2: Architecture = {
  name: 'qwen2',
  readConfig: (m) => readCommonConfig(m, 'neox'),
  load: llama.load,
};
