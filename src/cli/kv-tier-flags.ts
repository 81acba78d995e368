// The flags that put tiers under the prefix cache (serve): a Redis store shared by replicas and a local
// disk directory.
import type { EngineOptions } from '../engine/engine-types.js';
import { CliError, intOption } from './cli-error.js';
import { flagHelp, type FlagHelp } from './flag-help.js';
import { helpDefault } from './engine-defaults.js';
import { parseSize } from './sizes.js';

export const KV_TIER_OPTIONS = {
  'kv-store': { type: 'string' },
  'kv-store-timeout': { type: 'string' },
  'kv-disk': { type: 'string' },
  'kv-disk-size': { type: 'string' },
} as const;

const KV_TIER_FLAGS: readonly FlagHelp[] = [
  ['--kv-store URL', 'a Redis tier for cached KV blocks, shared by replicas: redis://HOST:PORT[/DB],', 'rediss://... or redis+cluster://HOST:PORT,HOST:PORT (Redis Cluster)'],
  ['--kv-store-timeout MS', 'a Redis command slower than this counts as failed and the blocks are', `computed instead (default ${helpDefault('kvStoreTimeoutMs')})`],
  ['--kv-disk DIR', 'a disk tier for cached KV blocks in DIR (created if missing)'],
  ['--kv-disk-size SIZE', `the disk tier's cap, e.g. 20GiB; least recently used blocks go first (default ${helpDefault('kvDiskBytes')})`],
];

export function kvTierHelp(column: number): string {
  return flagHelp(KV_TIER_FLAGS, column);
}

type KVTierFlags = { 'kv-store'?: string; 'kv-store-timeout'?: string; 'kv-disk'?: string; 'kv-disk-size'?: string };

/** The engine's tier options from the flags (the engine checks the store address and the directory). */
export function kvTierOptions(v: KVTierFlags): Pick<EngineOptions, 'kvStore' | 'kvStoreTimeoutMs' | 'kvDisk' | 'kvDiskBytes'> {
  if (v['kv-disk-size'] !== undefined && v['kv-disk'] === undefined) throw new CliError('--kv-disk-size sizes the disk tier: give --kv-disk DIR too');
  if (v['kv-store-timeout'] !== undefined && v['kv-store'] === undefined) throw new CliError('--kv-store-timeout applies to the Redis tier: give --kv-store URL too');
  return {
    ...(v['kv-store'] !== undefined ? { kvStore: v['kv-store'] } : {}),
    ...(v['kv-store-timeout'] !== undefined ? { kvStoreTimeoutMs: intOption('kv-store-timeout', v['kv-store-timeout'], 0, 1) } : {}),
    ...(v['kv-disk'] !== undefined ? { kvDisk: v['kv-disk'] } : {}),
    ...(v['kv-disk-size'] !== undefined ? { kvDiskBytes: parseSize('kv-disk-size', v['kv-disk-size']) } : {}),
  };
}
