// The engine's public types, shared by the main-thread API and the worker that runs the steps.
import type { ChatMessage, ChatTextPart } from './chat-message.js';
import type { GenerateDelta, RequestParams } from './completion.js';
import type { KVManagerKind, KVStats, PrefixCacheStats, TierStoreStats } from './engine-kv.js';
import type { AdmissionOrder, SchedulerKind } from './scheduler.js';
import type { RequestTimings } from './sequence.js';
import type { EvictionStats } from './kv-eviction.js';
import type { BlendStats } from './chunk-placement.js';
import type { KVType } from '../kv/format.js';
import type { ToolCallConvention } from '../model/tool-call-convention.js';

export type { AdmissionOrder, ChatMessage, ChatTextPart, EvictionStats, KVManagerKind, KVStats, PrefixCacheStats, RequestParams, RequestTimings, SchedulerKind };


/** A prompt: text (BOS added as the model asks), token ids used as they are, or chat messages. */
export type EngineInput = string | readonly number[] | readonly ChatMessage[];

export type EngineFinishReason = 'stop' | 'length' | 'abort';

export interface Usage {
  prompt_tokens: number;
  completion_tokens: number;
  total_tokens: number;
  /** cached_tokens: prompt tokens whose KV came from the prefix cache instead of being computed. */
  prompt_tokens_details: { cached_tokens: number };
  /**
   * vserve's extension, present when the request ran with a KV eviction policy: the policy, the budget
   * in tokens it resolved to, and how many tokens it dropped from the cache (prompt and output alike).
   */
  kv_eviction?: { policy: string; budget: number; evicted_tokens: number };
}

/** Most choices one request may ask for (OpenAI's n). */
export const MAX_CHOICES = 16;

/** Usage of a request that computed nothing. */
export function emptyUsage(): Usage {
  return { prompt_tokens: 0, completion_tokens: 0, total_tokens: 0, prompt_tokens_details: { cached_tokens: 0 } };
}

/** One streamed piece of a completion; the last carries finish_reason, usage and timings. */
export interface EngineDelta extends GenerateDelta {
  finish_reason?: EngineFinishReason;
  usage?: Usage;
  timings?: RequestTimings;
}

/** Engine.load's options: their types, ranges, defaults and descriptions are the schema's. */
export type { EngineConfig, EngineOptions } from '../config/engine-config.js';

export interface StepStats {
  /** Steps run so far. */
  steps: number;
  /** Tokens of the last step's batch: all, decodes, prefill (chunks and recomputation). */
  lastTokens: number;
  lastDecodeTokens: number;
  lastPrefillTokens: number;
  lastSeqs: number;
  lastMs: number;
  totalTokens: number;
  totalMs: number;
  /** Steps that only decoded (no prompt token), their tokens and milliseconds: the generation throughput. */
  decodeOnlySteps: number;
  decodeOnlyTokens: number;
  decodeOnlyMs: number;
  preemptions: number;
}

export interface EngineStats {
  running: number;
  waiting: number;
  step: StepStats;
  /** The KV manager's pool: totalPages / usedPages / freePages, pageBytes, residentBytes, per-slot use. */
  kv: KVStats;
  /** The prefix cache: entries, pages it alone holds, hit rate, evictions (absent when it is off). */
  prefixCache?: PrefixCacheStats;
  /** Blended documents: reused from the chunk store, their tokens recomputed, chunk jobs run (absent when the cache cannot blend). */
  blend?: BlendStats & { tokensRecomputed: number };
  /** The KV tiers below the pool: hits, rejected values, failures, queued writes (absent without tiers). */
  tiers?: TierStoreStats;
  /** KV eviction since the start: compactions, tokens evicted, pages they gave back (absent when the cache cannot evict). */
  eviction?: EvictionStats;
  /** Requests in flight. */
  requests: RequestTimings[];
}

/** What the engine reports about itself once loaded. */
export interface EngineInfo {
  modelPath: string;
  arch: string;
  vocabSize: number;
  maxContext: number;
  maxSeqs: number;
  maxBatchTokens: number;
  kvManager: KVManagerKind;
  scheduler: SchedulerKind;
  backend: string;
  /** The native backend's kernel set and compute threads. */
  isa?: string;
  threads?: number;
  prefixCache: boolean;
  /** The formats of K and V in the cache. */
  kvType: KVType;
  /** Milliseconds the model took to load, weight repacking included. */
  loadMs: number;
  /** The tool-call convention the chat template uses, when vserve knows it (tool_choice "auto" needs one). */
  toolCalls?: ToolCallConvention;
}
