// Prometheus metrics of the KV tiers below the prefix cache (disk, Redis): what lookups found, what was
// refused or failed, and what the write-through queue did. The engine keeps running totals; these follow
// them at scrape time.
import { Counter, Gauge, type Registry } from 'prom-client';
import type { TierStoreStats } from '../kv/tiers/tiered-store.js';
import { EngineTotal } from './engine-total.js';

export class TierMetrics {
  private readonly queried: EngineTotal<never>;
  private readonly hits: EngineTotal<never>;
  private readonly loadedBytes: EngineTotal<never>;
  private readonly rejected: EngineTotal<'reason'>;
  private readonly written: EngineTotal<never>;
  private readonly dropped: EngineTotal<never>;
  private readonly failures: EngineTotal<'tier'>;
  private readonly skipped: EngineTotal<'tier'>;
  private readonly pendingBytes: Gauge;
  private readonly up: Gauge<'tier'>;

  constructor(registry: Registry) {
    const registers = [registry];
    const total = <L extends string>(name: string, help: string, labelNames: L[] = []) => new EngineTotal<L>(new Counter<L>({ name, help, labelNames, registers }));
    this.queried = total('vserve:kv_tier_queried_blocks_total', 'Prompt blocks past the pool\'s hits looked up in the KV tiers.');
    this.hits = total('vserve:kv_tier_hit_blocks_total', 'Blocks loaded from a KV tier instead of being computed.');
    this.loadedBytes = total('vserve:kv_tier_loaded_bytes_total', 'Bytes of KV loaded from the tiers.');
    this.rejected = total('vserve:kv_tier_rejected_blocks_total', 'Values found in a tier but not used: another model or format, a bad checksum, malformed.', ['reason']);
    this.written = total('vserve:kv_tier_written_blocks_total', 'Blocks written through to the tiers.');
    this.dropped = total('vserve:kv_tier_dropped_writes_total', 'Blocks not written because the write queue was at its bound.');
    this.failures = total('vserve:kv_tier_failures_total', 'Tier calls that failed (unreachable, timed out, I/O error); the blocks were computed instead.', ['tier']);
    this.skipped = total('vserve:kv_tier_skipped_writes_total', 'Writes a tier skipped on purpose (a full disk, a value over its cap).', ['tier']);
    this.pendingBytes = new Gauge({ name: 'vserve:kv_tier_pending_write_bytes', help: 'Bytes queued for the tiers.', registers });
    this.up = new Gauge({ name: 'vserve:kv_tier_up', help: 'Whether each KV tier is reachable (1) or not (0).', labelNames: ['tier'], registers });
  }

  update(s: TierStoreStats): void {
    this.queried.follow(s.queriedBlocks);
    this.hits.follow(s.hitBlocks);
    this.loadedBytes.follow(s.loadedBytes);
    for (const [reason, n] of Object.entries(s.rejected)) this.rejected.follow(n, { reason });
    this.written.follow(s.writtenBlocks);
    this.dropped.follow(s.droppedWrites);
    for (const t of s.tiers) {
      this.failures.follow(t.failures, { tier: t.name });
      this.skipped.follow(t.skippedWrites, { tier: t.name });
      this.up.set({ tier: t.name }, t.up ? 1 : 0);
    }
    this.pendingBytes.set(s.pendingBytes);
  }
}
