// A BlockTier in memory for tests of what sits above the tiers: it can be made to fail, to answer slowly,
// or to hand back damaged values, and it counts what it was asked.
import type { BlockTier, BlockTierStats } from '../../../src/kv/tiers/tier.js';

export class MemoryTier implements BlockTier {
  readonly name = 'memory';
  readonly values = new Map<string, Uint8Array>();
  /** Every call rejects while set. */
  failing = false;
  /** Milliseconds each call takes. */
  delayMs = 0;
  gets = 0;
  private readonly counts: BlockTierStats = { puts: 0, putBytes: 0, gets: 0, getBytes: 0, failures: 0, skippedWrites: 0, up: true };

  async containsRun(keys: readonly string[]): Promise<number> {
    await this.call();
    const i = keys.findIndex((k) => !this.values.has(k));
    return i < 0 ? keys.length : i;
  }

  async get(keys: readonly string[]): Promise<(Uint8Array | undefined)[]> {
    await this.call();
    this.gets++;
    return keys.map((k) => {
      const v = this.values.get(k);
      if (v) {
        this.counts.gets++;
        this.counts.getBytes += v.length;
      }
      return v && v.slice();
    });
  }

  async put(key: string, value: Uint8Array): Promise<void> {
    await this.call();
    this.values.set(key, value.slice());
    this.counts.puts++;
    this.counts.putBytes += value.length;
  }

  stats(): BlockTierStats {
    return { ...this.counts, up: !this.failing };
  }

  async close(): Promise<void> {}

  private async call(): Promise<void> {
    if (this.delayMs > 0) await new Promise((r) => setTimeout(r, this.delayMs));
    if (this.failing) {
      this.counts.failures++;
      throw new Error('memory tier: failing on purpose');
    }
  }
}
