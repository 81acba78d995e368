// The flags that choose the KV cache's formats (serve, chat, run), as llama.cpp's: K and V separately,
// or both at once.
import { KV_FORMAT_NAMES, type KVFormatName, type KVType } from '../kv/format.js';
import { choiceOption, CliError } from './cli-error.js';

export const KV_TYPE_OPTIONS = {
  'kv-type': { type: 'string' },
  'kv-type-k': { type: 'string' },
  'kv-type-v': { type: 'string' },
} as const;

export const KV_TYPE_HELP = `      --kv-type TYPE         format of the KV cache: f16 (default), f32, q8_0 or q4_0 (q8_0 and q4_0
                             need the model's KV heads x head size to be a multiple of 32)
      --kv-type-k TYPE       the format of K only; --kv-type-v TYPE: of V only`;

/** The engine's kvType from the flags (undefined: the engine's default). */
export function kvTypeOption(v: { 'kv-type'?: string; 'kv-type-k'?: string; 'kv-type-v'?: string }): Partial<KVType> | undefined {
  const both = choiceOption<KVFormatName>('kv-type', v['kv-type'], KV_FORMAT_NAMES);
  const k = choiceOption<KVFormatName>('kv-type-k', v['kv-type-k'], KV_FORMAT_NAMES);
  const val = choiceOption<KVFormatName>('kv-type-v', v['kv-type-v'], KV_FORMAT_NAMES);
  if (both !== undefined && (k !== undefined || val !== undefined)) {
    throw new CliError('give --kv-type for both K and V, or --kv-type-k / --kv-type-v, not both');
  }
  if (both !== undefined) return { k: both, v: both };
  if (k === undefined && val === undefined) return undefined;
  return { ...(k !== undefined ? { k } : {}), ...(val !== undefined ? { v: val } : {}) };
}
