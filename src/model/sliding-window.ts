// Which layers attend through a sliding window, as GGUF metadata says (llama.cpp's reading):
// `<arch>.attention.sliding_window` is the window in positions and `<arch>.attention.sliding_window_pattern`
// either a bool per layer (true: windowed) or a period n, where the last layer of every n is global and
// the others windowed (n = 0: every layer windowed). Without a pattern the architecture's own period holds.
import { type MetadataReader, ModelConfigError } from './model-config.js';

/** The window, or undefined where the file has none (absent or 0). */
export function readSlidingWindow(m: MetadataReader): number | undefined {
  if (!m.has('attention.sliding_window')) return undefined;
  const w = m.number('attention.sliding_window');
  if (w === 0) return undefined;
  if (!Number.isInteger(w) || w < 1 || w > 0x7fffffff) throw new ModelConfigError(`${m.where}: ${m.arch}.attention.sliding_window = ${w} is not a whole number of positions`);
  return w;
}

/** Per layer, whether it is windowed. */
export function readWindowedLayers(m: MetadataReader, nLayers: number, defaultPeriod: number): boolean[] {
  const key = `${m.arch}.attention.sliding_window_pattern`;
  const v = m.file.get(key);
  if (Array.isArray(v)) {
    if (v.length !== nLayers || v.some((x) => typeof x !== 'boolean')) throw new ModelConfigError(`${m.where}: ${key} must be ${nLayers} bools (one per layer)`);
    return v as boolean[];
  }
  const period = v === undefined ? defaultPeriod : v;
  if (typeof period !== 'number' || !Number.isInteger(period) || period < 0) throw new ModelConfigError(`${m.where}: ${key} = ${String(v)} is neither a layer period nor one bool per layer`);
  return Array.from({ length: nLayers }, (_, l) => period === 0 || l % period < period - 1);
}
