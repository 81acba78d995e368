// Prometheus metrics under vLLM's names (vllm:* becomes vserve:*), so existing dashboards map over.
// Latencies are observed by the routes as tokens leave; engine-side figures are read at scrape time.
import { Counter, Gauge, Histogram, Registry } from 'prom-client';
import type { EngineStats } from '../engine/engine-types.js';
import { EngineTotal } from './engine-total.js';
import { TierMetrics } from './tier-metrics.js';
import { BlendMetrics } from './blend-metrics.js';

const LATENCY_BUCKETS = [0.001, 0.005, 0.01, 0.02, 0.04, 0.06, 0.08, 0.1, 0.25, 0.5, 0.75, 1, 2.5, 5, 7.5, 10, 20, 40, 80];
const TOKEN_GAP_BUCKETS = [0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.075, 0.1, 0.15, 0.2, 0.3, 0.4, 0.5, 0.75, 1, 2.5, 5];

/** Why a request ended without a normal finish: one label value each. */
export type FailureReason =
  | 'invalid_request' | 'unauthorized' | 'not_found' | 'too_large' | 'unsupported_media_type' | 'timeout' | 'rejected'
  | 'client_disconnected' | 'shutdown' | 'server_error';

export class ServerMetrics {
  readonly registry = new Registry();
  private readonly success: Counter<'finished_reason'>;
  private readonly failure: Counter<'reason'>;
  private readonly ttft: Histogram;
  private readonly tbt: Histogram;
  private readonly e2e: Histogram;
  private readonly promptTokens: Counter;
  private readonly generationTokens: Counter;
  private readonly running: Gauge;
  private readonly waiting: Gauge;
  private readonly pagesUsed: Gauge;
  private readonly pagesHeld: Gauge;
  private readonly pagesFree: Gauge;
  private readonly usage: Gauge;
  private readonly cacheConfig: Gauge;
  private readonly preemptions: EngineTotal;
  private readonly prefixQueries: EngineTotal;
  private readonly prefixHits: EngineTotal;
  private readonly evictedTokens: EngineTotal;
  private readonly evictionFreedPages: EngineTotal;
  /** Registered when the engine first reports tiers, so servers without them expose none of their metrics. */
  private tiers: TierMetrics | undefined;
  /** Likewise when it first reports blended documents. */
  private blend: BlendMetrics | undefined;

  constructor(modelName: string) {
    const registers = [this.registry];
    this.registry.setDefaultLabels({ model_name: modelName });
    this.success = new Counter({ name: 'vserve:request_success_total', help: 'Requests that finished, by finish reason.', labelNames: ['finished_reason'], registers });
    this.failure = new Counter({ name: 'vserve:request_failure_total', help: 'Requests that did not finish, by reason.', labelNames: ['reason'], registers });
    this.ttft = new Histogram({ name: 'vserve:time_to_first_token_seconds', help: 'Time from arrival to the first generated token.', buckets: LATENCY_BUCKETS, registers });
    this.tbt = new Histogram({ name: 'vserve:time_per_output_token_seconds', help: 'Time between consecutive generated tokens.', buckets: TOKEN_GAP_BUCKETS, registers });
    this.e2e = new Histogram({ name: 'vserve:e2e_request_latency_seconds', help: 'Time from arrival to the last token.', buckets: LATENCY_BUCKETS, registers });
    this.promptTokens = new Counter({ name: 'vserve:prompt_tokens_total', help: 'Prompt tokens processed.', registers });
    this.generationTokens = new Counter({ name: 'vserve:generation_tokens_total', help: 'Tokens generated.', registers });
    this.running = new Gauge({ name: 'vserve:num_requests_running', help: 'Requests in the running batch.', registers });
    this.waiting = new Gauge({ name: 'vserve:num_requests_waiting', help: 'Requests waiting for admission.', registers });
    this.pagesUsed = new Gauge({ name: 'vserve:kv_cache_pages_used', help: 'KV pool pages used by running requests.', registers });
    this.pagesHeld = new Gauge({ name: 'vserve:kv_cache_pages_held', help: 'KV pool pages kept for reuse (prefix cache, idle slots), given back at once when needed.', registers });
    this.pagesFree = new Gauge({ name: 'vserve:kv_cache_pages_free', help: 'KV pool pages free to hand out.', registers });
    this.usage = new Gauge({ name: 'vserve:kv_cache_usage_perc', help: 'Fraction of KV pool pages used by running requests (1 = full).', registers });
    this.cacheConfig = new Gauge({
      name: 'vserve:cache_config_info',
      help: 'The KV cache configuration, as labels (the value is always 1).',
      labelNames: ['kv_manager', 'cache_type_k', 'cache_type_v', 'page_bytes', 'bytes_per_token', 'total_pages'],
      registers,
    });
    const total = (name: string, help: string) => new EngineTotal(new Counter({ name, help, registers }));
    this.preemptions = total('vserve:num_preemptions_total', 'Sequences preempted (recomputed later) when KV pages ran out.');
    this.prefixQueries = total('vserve:prefix_cache_queries_total', 'Prompt tokens looked up in the prefix cache.');
    this.prefixHits = total('vserve:prefix_cache_hits_total', 'Prompt tokens found in the prefix cache.');
    this.evictedTokens = total('vserve:kv_evicted_tokens_total', 'Tokens evicted from sequences\' KV caches by their kv_policy.');
    this.evictionFreedPages = total('vserve:kv_eviction_freed_pages_total', 'KV pool pages that eviction gave back.');
  }

  finished(reason: string, promptTokens: number, completionTokens: number): void {
    this.success.inc({ finished_reason: reason });
    this.promptTokens.inc(promptTokens);
    this.generationTokens.inc(completionTokens);
  }

  failed(reason: FailureReason): void {
    this.failure.inc({ reason });
  }

  firstToken(seconds: number): void {
    this.ttft.observe(seconds);
  }

  tokenGap(seconds: number): void {
    this.tbt.observe(seconds);
  }

  endToEnd(seconds: number): void {
    this.e2e.observe(seconds);
  }

  /** The text exposition, with the engine's gauges read just now. */
  async render(stats: EngineStats | undefined): Promise<string> {
    if (stats) {
      this.running.set(stats.running);
      this.waiting.set(stats.waiting);
      // As vLLM's: pages of running sequences are used; pages kept for reuse (idle slots, the prefix cache)
      // can be taken back at once, so they count apart, not as usage.
      this.pagesUsed.set(stats.kv.runningPages);
      this.pagesHeld.set(stats.kv.idlePages + stats.kv.cachedPages);
      this.pagesFree.set(stats.kv.freePages);
      this.usage.set(stats.kv.totalPages ? stats.kv.runningPages / stats.kv.totalPages : 0);
      this.cacheConfig.reset();
      this.cacheConfig.set({
        kv_manager: stats.kv.kind, cache_type_k: stats.kv.kvType.k, cache_type_v: stats.kv.kvType.v, page_bytes: String(stats.kv.pageBytes),
        bytes_per_token: String(stats.kv.bytesPerToken), total_pages: String(stats.kv.totalPages),
      }, 1);
      this.preemptions.follow(stats.step.preemptions);
      this.prefixQueries.follow(stats.prefixCache?.queryTokens ?? 0);
      this.prefixHits.follow(stats.prefixCache?.hitTokens ?? 0);
      this.evictedTokens.follow(stats.eviction?.evictedTokens ?? 0);
      this.evictionFreedPages.follow(stats.eviction?.freedPages ?? 0);
      if (stats.tiers) (this.tiers ??= new TierMetrics(this.registry)).update(stats.tiers);
      if (stats.blend) (this.blend ??= new BlendMetrics(this.registry)).update(stats.blend);
    }
    return this.registry.metrics();
  }

  get contentType(): string {
    return this.registry.contentType;
  }
}
