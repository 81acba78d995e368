// Gemma 2: Gemma's layers with post-attention and post-MLP norms, local (sliding-window) layers
// alternating with global ones (every other layer, starting local), and soft-capped attention and
// final logits. Defaults where a file omits a key are llama.cpp's (Gemma 2's published values).
import type { Architecture } from '../architecture.js';
import { ModelConfigError, type MetadataReader } from '../model-config.js';
import { readSlidingWindow, readWindowedLayers } from '../sliding-window.js';
import { type GemmaConfig, gemmaAttentionScale, loadGemma, readGemmaCommon } from './gemma.js';

const DEFAULT_WINDOW = 4096;
const DEFAULT_ATTN_SOFTCAP = 50;
const DEFAULT_FINAL_SOFTCAP = 30;

/** A soft-cap key, which must be positive (llama.cpp divides by it). */
export function readSoftcap(m: MetadataReader, key: string, fallback?: number): number | undefined {
  if (!m.has(key)) return fallback;
  const c = m.number(key);
  if (!(c > 0)) throw new ModelConfigError(`${m.where}: ${m.arch}.${key} = ${c} must be positive`);
  return c;
}

export const gemma2: Architecture<GemmaConfig> = {
  name: 'gemma2',
  readConfig(m) {
    const c = readGemmaCommon(m);
    // llama.cpp keeps Gemma 2's window on even when the file says 0 (it then masks every row): refused.
    const window = m.has('attention.sliding_window') ? readSlidingWindow(m) : DEFAULT_WINDOW;
    if (window === undefined) throw new ModelConfigError(`${m.where}: gemma2.attention.sliding_window is 0; Gemma 2's local layers need a window`);
    const windowed = readWindowedLayers(m, c.nLayers, 2);
    return {
      ...c,
      ...(windowed.some((x) => x) ? { slidingWindow: window } : {}),
      windowed,
      localRopeBase: m.number('rope.freq_base_swa', c.ropeFreqBase),
      localRopeScale: c.ropeFreqScale,
      attentionScale: gemmaAttentionScale(c, 46),
      attnSoftcap: readSoftcap(m, 'attn_logit_softcapping', DEFAULT_ATTN_SOFTCAP),
      finalSoftcap: readSoftcap(m, 'final_logit_softcapping', DEFAULT_FINAL_SOFTCAP),
      postNorms: true,
      qkNorms: false,
    };
  },
  load: loadGemma,
};
