// The router's Prometheus metrics: requests sent to each replica, what decided each choice, how much of
// the prompts the chosen replicas held, retries and broken streams, and each replica's state (read from
// the pool at scrape time).
import { Counter, Gauge, Registry } from 'prom-client';
import type { ReplicaPool } from './replica-pool.js';
import type { RouteDecision, ReplicaView } from './routing-policy.js';

export class RouterMetrics {
  readonly registry = new Registry();
  private readonly requests: Counter<'replica' | 'endpoint'>;
  private readonly decisions: Counter<'policy' | 'basis'>;
  private readonly overlapBlocks: Counter<'replica'>;
  private readonly promptBlocks: Counter<'replica'>;
  private readonly retries: Counter<'replica'>;
  private readonly brokenStreams: Counter<'replica'>;
  private readonly unrouted: Counter<'reason'>;
  private readonly up: Gauge<'replica'>;
  private readonly inFlight: Gauge<'replica'>;
  private readonly cachedBlocks: Gauge<'replica'>;

  constructor(private readonly pool: ReplicaPool) {
    const registers = [this.registry];
    this.requests = new Counter({ name: 'vserve:router_requests_total', help: 'Requests sent to each replica (a retried request counts at each replica it was sent to).', labelNames: ['replica', 'endpoint'], registers });
    this.decisions = new Counter({ name: 'vserve:router_decisions_total', help: 'Routing decisions, by policy and by what decided: the cached prefix, the load, or the turn.', labelNames: ['policy', 'basis'], registers });
    this.overlapBlocks = new Counter({ name: 'vserve:router_overlap_blocks_total', help: 'Prompt blocks the chosen replica held in its prefix cache (or was computing) when the request was routed.', labelNames: ['replica'], registers });
    this.promptBlocks = new Counter({ name: 'vserve:router_prompt_blocks_total', help: 'Prompt blocks of the requests routed to each replica.', labelNames: ['replica'], registers });
    this.retries = new Counter({ name: 'vserve:router_retries_total', help: 'Requests retried on another replica because this one failed before answering.', labelNames: ['replica'], registers });
    this.brokenStreams = new Counter({ name: 'vserve:router_broken_streams_total', help: 'Streamed responses cut off because the replica failed mid-stream (the client got an error event).', labelNames: ['replica'], registers });
    this.unrouted = new Counter({ name: 'vserve:router_unrouted_total', help: 'Requests answered with an error because no replica could take them.', labelNames: ['reason'], registers });
    this.up = new Gauge({ name: 'vserve:router_replica_up', help: 'Whether the replica takes requests (1) or not (0: down, starting, or its keys differ).', labelNames: ['replica'], registers });
    this.inFlight = new Gauge({ name: 'vserve:router_replica_requests_in_flight', help: 'Requests the router has in flight on the replica.', labelNames: ['replica'], registers });
    this.cachedBlocks = new Gauge({ name: 'vserve:router_replica_cached_blocks', help: 'Blocks in the replica\'s prefix cache, as its block event stream reports them.', labelNames: ['replica'], registers });
  }

  sent(replica: ReplicaView, endpoint: string): void {
    this.requests.inc({ replica: replica.url, endpoint });
  }

  decided(policy: string, decision: RouteDecision<ReplicaView>, promptBlocks: number): void {
    this.decisions.inc({ policy, basis: decision.basis });
    this.overlapBlocks.inc({ replica: decision.replica.url }, decision.overlapBlocks);
    this.promptBlocks.inc({ replica: decision.replica.url }, promptBlocks);
  }

  retried(failed: ReplicaView): void {
    this.retries.inc({ replica: failed.url });
  }

  streamBroken(replica: ReplicaView): void {
    this.brokenStreams.inc({ replica: replica.url });
  }

  notRouted(reason: 'no_replica' | 'all_failed'): void {
    this.unrouted.inc({ reason });
  }

  async render(): Promise<string> {
    for (const r of this.pool.replicas) {
      this.up.set({ replica: r.url }, r.eligible ? 1 : 0);
      this.inFlight.set({ replica: r.url }, r.inFlight);
      this.cachedBlocks.set({ replica: r.url }, r.cachedBlocks);
    }
    return this.registry.metrics();
  }

  get contentType(): string {
    return this.registry.contentType;
  }
}
