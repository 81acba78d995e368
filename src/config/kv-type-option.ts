// Engine.load's kvType: one format name for K and V, a KIVI name, or { k, v } with either left at the
// default; resolved to the formats of K and V.
import { checkKnownKeys } from '../engine/known-keys.js';
import { DEFAULT_KV_TYPE, isKVFormatName, KIVI_TYPES, KV_FORMAT_NAMES, type KIVIName, type KVFormatName, type KVType } from '../kv/format.js';
import { EngineConfigError } from './engine-config-error.js';

export type KVTypeOption = KVFormatName | KIVIName | Partial<KVType>;

export function resolveKVType(v: KVTypeOption | undefined): KVType {
  if (v === undefined) return DEFAULT_KV_TYPE;
  const name = (x: unknown, what: string): KVFormatName => {
    if (isKVFormatName(x)) return x;
    const kivi = what === 'kvType' ? `, ${Object.keys(KIVI_TYPES).join(', ')}` : '';
    throw new EngineConfigError(`${what} must be one of ${KV_FORMAT_NAMES.join(', ')}${kivi}, got ${JSON.stringify(x)}`);
  };
  if (typeof v === 'string' && v in KIVI_TYPES) return { ...KIVI_TYPES[v as KIVIName] };
  if (typeof v === 'string') {
    const f = name(v, 'kvType');
    return { k: f, v: f };
  }
  if (typeof v !== 'object' || v === null) throw new EngineConfigError(`kvType must be a format name or { k, v }, got ${JSON.stringify(v)}`);
  checkKnownKeys('kvType key', v, ['k', 'v'], (m) => new EngineConfigError(m));
  return { k: v.k === undefined ? DEFAULT_KV_TYPE.k : name(v.k, 'kvType.k'), v: v.v === undefined ? DEFAULT_KV_TYPE.v : name(v.v, 'kvType.v') };
}
