// The KV cache types the format benchmarks compare, as `--formats` names them: one format for K and V
// ("q8_0"), or K/V ("q8_0/q4_0", the label kvTypeLabel gives), and what llama.cpp calls each format.
import { KIVI_TYPES, kvFormat, kvTypeLabel, type KIVIName, type KVFormatName, type KVType } from '../src/kv/format.js';

/** f32, f16, q8_0, q4_0, q8_0 keys with q4_0 values, and KIVI at 4 and 2 bits. */
export const DEFAULT_FORMAT_VARIANTS: readonly string[] = ['f32', 'f16', 'q8_0', 'q4_0', 'q8_0/q4_0', 'kivi4', 'kivi2'];

/** ggml's type name for the formats llama.cpp has too (node-llama-cpp's experimentalKvCache*Type takes these). */
const LLAMA_CPP_TYPE: Partial<Record<KVFormatName, 'F32' | 'F16' | 'Q8_0' | 'Q4_0'>> = { f32: 'F32', f16: 'F16', q8_0: 'Q8_0', q4_0: 'Q4_0' };

/** llama.cpp's name of a format, or an error saying it has none. */
export function llamaCppType(name: KVFormatName): 'F32' | 'F16' | 'Q8_0' | 'Q4_0' {
  const t = LLAMA_CPP_TYPE[name];
  if (!t) throw new Error(`llama.cpp has no ${name} cache type`);
  return t;
}

/** "q8_0" -> { k: q8_0, v: q8_0 }; "q8_0/q4_0" -> { k: q8_0, v: q4_0 }; "kivi2" -> KIVI's pair; unknown names throw, listing the formats. */
export function parseKVType(text: string): KVType {
  if (text in KIVI_TYPES) return { ...KIVI_TYPES[text as KIVIName] };
  const parts = text.split('/');
  if (parts.length > 2) throw new Error(`--formats: "${text}" is not a format or K/V pair of formats (e.g. q8_0 or q8_0/q4_0)`);
  const k = kvFormat(parts[0]!, '--formats entry').name;
  const v = kvFormat(parts[1] ?? parts[0]!, '--formats entry').name;
  return { k, v };
}

/** The types in `names`, each once, labelled as reports show them. */
export function parseKVTypes(names: readonly string[]): { label: string; type: KVType }[] {
  const seen = new Set<string>();
  return names.map(parseKVType).map((type) => ({ label: kvTypeLabel(type), type })).filter(({ label }) => !seen.has(label) && !!seen.add(label));
}
