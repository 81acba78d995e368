// The flags that choose the KV cache's formats (serve, chat, run), as llama.cpp's: K and V separately,
// or both at once.
import { DEFAULT_KIVI_RESIDUAL, KIVI_TYPES, KV_FORMAT_NAMES, type KIVIName, type KVFormatName, type KVType } from '../kv/format.js';
import { flagHelp, type FlagHelp } from './flag-help.js';
import { helpDefault } from './engine-defaults.js';
import { choiceOption, CliError, intOption } from './cli-error.js';

export const KV_TYPE_OPTIONS = {
  'kv-type': { type: 'string' },
  'kv-type-k': { type: 'string' },
  'kv-type-v': { type: 'string' },
  'kv-quant': { type: 'string' },
  'kv-residual': { type: 'string' },
  'kv-rotate': { type: 'boolean' },
  'no-kv-rotate': { type: 'boolean' },
} as const;

const KV_TYPE_FLAGS: readonly FlagHelp[] = [
  ['--kv-type TYPE', `format of the KV cache: f32, f16, q8_0 or q4_0 (default ${helpDefault('kvType')}; q8_0 and q4_0`, "need the model's KV heads x head size to be a multiple of 32)"],
  ['--kv-type-k TYPE', 'the format of K only; --kv-type-v TYPE: of V only'],
  ['--kv-quant KIVI', "kivi2 or kivi4: KIVI's 2-/4-bit cache (keys per channel, values per token)"],
  ['--kv-residual N', `newest tokens kept f16 before they are encoded (KIVI; default ${DEFAULT_KIVI_RESIDUAL})`],
  ['--kv-rotate', 'store K and V Walsh-Hadamard rotated (the default with q8_0 and q4_0,', 'whose error it lowers); --no-kv-rotate: never'],
];

/** The help lines of these flags, their descriptions starting at `column` (each command aligns its own). */
export function kvTypeHelp(column: number): string {
  return flagHelp(KV_TYPE_FLAGS, column);
}

export const KV_TYPE_HELP = kvTypeHelp(29);

type KVTypeFlags = { 'kv-type'?: string; 'kv-type-k'?: string; 'kv-type-v'?: string; 'kv-quant'?: string };

/** The engine's kvType from the flags (undefined: the engine's default). */
export function kvTypeOption(v: KVTypeFlags): Partial<KVType> | KIVIName | undefined {
  const both = choiceOption<KVFormatName>('kv-type', v['kv-type'], KV_FORMAT_NAMES);
  const k = choiceOption<KVFormatName>('kv-type-k', v['kv-type-k'], KV_FORMAT_NAMES);
  const val = choiceOption<KVFormatName>('kv-type-v', v['kv-type-v'], KV_FORMAT_NAMES);
  const kivi = choiceOption<KIVIName>('kv-quant', v['kv-quant'], Object.keys(KIVI_TYPES) as KIVIName[]);
  if ([both, k ?? val, kivi].filter((x) => x !== undefined).length > 1) {
    throw new CliError('choose the KV cache format once: --kv-type, --kv-type-k / --kv-type-v, or --kv-quant');
  }
  if (kivi !== undefined) return kivi;
  if (both !== undefined) return { k: both, v: both };
  if (k === undefined && val === undefined) return undefined;
  return { ...(k !== undefined ? { k } : {}), ...(val !== undefined ? { v: val } : {}) };
}

/** --kv-residual: tokens (undefined: the formats' default). */
export function kvResidualOption(v: { 'kv-residual'?: string }): number | undefined {
  return v['kv-residual'] === undefined ? undefined : intOption('kv-residual', v['kv-residual'], 0, 0);
}

/** --kv-rotate / --no-kv-rotate (undefined: the formats' default). */
export function kvRotateOption(v: { 'kv-rotate'?: boolean; 'no-kv-rotate'?: boolean }): boolean | undefined {
  if (v['kv-rotate'] && v['no-kv-rotate']) throw new CliError('give --kv-rotate or --no-kv-rotate, not both');
  return v['kv-rotate'] ? true : v['no-kv-rotate'] ? false : undefined;
}
