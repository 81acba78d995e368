// The tiers an engine's options ask for, opened before the engine starts so that a bad address or an
// unusable directory is a configuration error at load, not a failure on the first request: the disk tier
// first (near and cheap), then Redis (shared by replicas).
import { DiskTier } from '../kv/tiers/disk-tier.js';
import { createRedisTier, parseStoreAddress } from '../kv/tiers/store-address.js';
import type { BlockTier } from '../kv/tiers/tier.js';
import { KVTierStore } from '../kv/tiers/tiered-store.js';
import type { EngineConfig } from '../config/engine-config.js';
import { EngineConfigError } from '../config/engine-config-error.js';

/** The longest the engine waits at start for Redis to connect. */
const REDIS_START_WAIT_MS = 2000;

/** The tier options of a parsed configuration (ranges checked, defaults filled in). */
export type TierOptions = Pick<EngineConfig, 'prefixCache' | 'kvStore' | 'kvStoreTimeoutMs' | 'kvDisk' | 'kvDiskBytes'>;

/** The opened tiers: a factory for ManagedKVOptions.tiers, and a way to close them if the engine never starts. */
export interface OpenedTiers {
  factory: (fingerprint: string, blockBytes: number) => KVTierStore;
  close(): Promise<void>;
}

/** Opens the tiers `opts` names (undefined when it names none); their errors name the option at fault. */
export async function openTiers(opts: TierOptions, log: (line: string) => void): Promise<OpenedTiers | undefined> {
  if (opts.kvStore === undefined && opts.kvDisk === undefined) return undefined;
  if (opts.prefixCache === false) throw new EngineConfigError(`${opts.kvStore !== undefined ? 'kvStore' : 'kvDisk'} keeps the prefix cache's blocks: it needs the prefix cache on`);
  const tiers: BlockTier[] = [];
  const close = async () => void (await Promise.allSettled(tiers.map((t) => t.close())));
  try {
    if (opts.kvDisk !== undefined) {
      const directory = opts.kvDisk;
      const capBytes = opts.kvDiskBytes;
      tiers.push(await DiskTier.open({ directory, capBytes, log }).catch((e: Error) => Promise.reject(new EngineConfigError(`kvDisk: ${e.message}`))));
    }
    if (opts.kvStore !== undefined) {
      let address;
      try {
        address = parseStoreAddress(opts.kvStore);
      } catch (e) {
        throw new EngineConfigError(`kvStore: ${(e as Error).message}`);
      }
      const redis = createRedisTier(address, { commandTimeoutMs: opts.kvStoreTimeoutMs, log });
      tiers.push(redis);
      // The first requests should find it connected; if it is not there yet, they compute (its own log
      // says it is unreachable) and it joins when it answers.
      await redis.whenUp(REDIS_START_WAIT_MS);
    }
  } catch (e) {
    await close();
    throw e;
  }
  return { factory: (fingerprint, blockBytes) => new KVTierStore(tiers, { fingerprint, blockBytes }), close };
}
