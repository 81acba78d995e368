// Prometheus metrics of blended documents (CacheBlend): how many documents and tokens came from the chunk
// store, how many of their tokens were recomputed, and how many chunk jobs computed documents the store
// lacked. The engine keeps running totals; these follow them at scrape time.
import { Counter, type Registry } from 'prom-client';
import type { EngineStats } from '../engine/engine-types.js';
import { EngineTotal } from './engine-total.js';

export class BlendMetrics {
  private readonly documents: EngineTotal<never>;
  private readonly reused: EngineTotal<never>;
  private readonly recomputed: EngineTotal<never>;
  private readonly jobs: EngineTotal<never>;

  constructor(registry: Registry) {
    const total = (name: string, help: string) => new EngineTotal<never>(new Counter({ name, help, registers: [registry] }));
    this.documents = total('vserve:blend_documents_reused_total', 'Prompt documents whose KV was placed from the chunk store.');
    this.reused = total('vserve:blend_tokens_reused_total', 'Tokens of those documents.');
    this.recomputed = total('vserve:blend_tokens_recomputed_total', 'Document tokens recomputed past the selection layer.');
    this.jobs = total('vserve:blend_chunk_jobs_total', 'Documents computed for the chunk store because it lacked them.');
  }

  update(s: NonNullable<EngineStats['blend']>): void {
    this.documents.follow(s.documentsReused);
    this.reused.follow(s.tokensReused);
    this.recomputed.follow(s.tokensRecomputed);
    this.jobs.follow(s.chunkJobs);
  }
}
