// Gemma 3 (text): Gemma 2's layers without attention soft-capping, with per-head QK norms, and five
// local (sliding-window) layers to each global one. Local layers rotate with their own RoPE base
// (10000 unless rope.freq_base_swa says otherwise) and no position scaling; global layers use
// rope.freq_base and the file's linear RoPE scaling. A final logit soft-cap applies only where the file
// gives one. Files without a sliding window attend globally in every layer.
import type { Architecture } from '../architecture.js';
import { ModelConfigError } from '../model-config.js';
import { readSlidingWindow, readWindowedLayers } from '../sliding-window.js';
import { type GemmaConfig, gemmaAttentionScale, loadGemma, readGemmaCommon } from './gemma.js';
import { readSoftcap } from './gemma2.js';

const LOCAL_ROPE_BASE = 10000;

export const gemma3: Architecture<GemmaConfig> = {
  name: 'gemma3',
  readConfig(m) {
    const c = readGemmaCommon(m);
    for (const key of ['attention.key_length_swa', 'attention.value_length_swa', 'rope.dimension_count_swa']) {
      if (m.has(key)) throw new ModelConfigError(`${m.where}: ${m.arch}.${key} (local layers shaped differently) is not supported`);
    }
    const window = readSlidingWindow(m);
    const windowed = window === undefined ? new Array<boolean>(c.nLayers).fill(false) : readWindowedLayers(m, c.nLayers, 6);
    const finalSoftcap = readSoftcap(m, 'final_logit_softcapping');
    return {
      ...c,
      ...(window !== undefined && windowed.some((x) => x) ? { slidingWindow: window } : {}),
      windowed,
      localRopeBase: m.number('rope.freq_base_swa', LOCAL_ROPE_BASE),
      localRopeScale: 1,
      attentionScale: gemmaAttentionScale(c, 62),
      ...(finalSoftcap !== undefined ? { finalSoftcap } : {}),
      postNorms: true,
      qkNorms: true,
    };
  },
  load: loadGemma,
};
