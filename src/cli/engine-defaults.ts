// The engine's defaults and choices as the CLI help states them, read from the configuration schema so
// that a help text never disagrees with what Engine.load does.
import { z } from 'zod';
import { ENGINE_DEFAULTS, engineConfigSchema, type EngineOptionName } from '../config/engine-config.js';
import { kvTypeLabel, type KVType } from '../kv/format.js';
import { formatSize } from './sizes.js';

/** The option's default as a flag takes it: "512", "4GiB", "f16". */
export function helpDefault(name: EngineOptionName): string {
  const value = ENGINE_DEFAULTS[name];
  if (value === undefined) throw new Error(`the engine's schema gives ${name} no default`);
  if (name === 'kvType') return kvTypeLabel(value as KVType);
  // Byte counts are given to their flags as sizes (--kv-disk-size 20GiB).
  if (name.endsWith('Bytes')) return formatSize(value as number);
  return String(value);
}

/** The option's choices with the default marked: "virtual (default), paged or static". */
export function choiceHelp(name: EngineOptionName): string {
  const field = engineConfigSchema.shape[name];
  const inner = field instanceof z.ZodDefault ? field.unwrap() : field;
  if (!(inner instanceof z.ZodEnum)) throw new Error(`${name} is not a choice in the engine's schema`);
  const names = (inner.options as string[]).map((n) => (n === ENGINE_DEFAULTS[name] ? `${n} (default)` : n));
  return `${names.slice(0, -1).join(', ')} or ${names.at(-1)}`;
}
