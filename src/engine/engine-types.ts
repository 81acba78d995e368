// The engine's public types, shared by the main-thread API and the worker that runs the steps.
import type { ChatMessage, ChatTextPart } from './chat-message.js';
import type { GenerateDelta, RequestParams } from './completion.js';
import type { KVManagerKind, KVStats, PrefixCacheStats, TierStoreStats } from './engine-kv.js';
import type { AdmissionOrder, SchedulerKind } from './scheduler.js';
import type { RequestTimings } from './sequence.js';
import type { EvictionStats } from './kv-eviction.js';
import type { BlendStats } from './chunk-placement.js';
import type { KIVIName, KVFormatName, KVType } from '../kv/format.js';
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

export interface EngineOptions {
  /** KV-cache manager (default 'virtual'). */
  kvManager?: KVManagerKind;
  /** KV pool budget in bytes (default: every slot at full context). */
  kvMemory?: number;
  /** Virtual manager: bytes per page (default: chosen from kvMemory). */
  pageSize?: number;
  /**
   * Formats the KV cache stores K and V in: 'f32' | 'f16' | 'q8_0' | 'q4_0', one name for both or
   * { k, v } (default 'f16'). q8_0 and q4_0 need kvHeads x headDim to be a multiple of 32.
   */
  kvType?: KVFormatName | KIVIName | Partial<KVType>;
  /**
   * Newest tokens of each sequence kept in f16 before they are encoded (KIVI's residual; a multiple of
   * 32). Default: 128 with the KIVI formats, 0 otherwise.
   */
  kvResidual?: number;
  /**
   * Store K and V rotated by a Walsh-Hadamard transform per head, which lowers the error of the block
   * formats. Default: on with q8_0 or q4_0, off with f32, f16 and KIVI.
   */
  kvRotate?: boolean;
  /**
   * KV eviction policy of requests that name none (default 'none'): 'sinks', 'h2o' or 'tova' keep every
   * sequence within kvBudget as it grows (prompts and outputs may then pass maxContext); 'snapkv',
   * 'chunkkv' or 'pyramidkv' compress each prompt to kvBudget once it is computed. Not with KIVI caches.
   */
  kvPolicy?: string;
  /**
   * Tokens the policy keeps per sequence, or a fraction (0..1) of the prompt. Default: maxContext for
   * the decode-time policies (a context shift), half the prompt for the prompt-time ones.
   */
  kvBudget?: number;
  /** Paged manager: tokens per block (default 16). */
  blockSize?: number;
  /** Sequences running at once, i.e. KV slots (default 16). */
  maxSeqs?: number;
  /** Token budget per step (default 512). */
  maxBatchTokens?: number;
  /** Context per sequence, prompt included (default: the model's, at most 2048). */
  maxContext?: number;
  /** Batching policy (default 'sarathi'). */
  scheduler?: SchedulerKind;
  /** Fraction of the KV pool admission keeps free for running sequences to grow (default 0.01). */
  watermark?: number;
  /** Automatic prefix caching: computed KV blocks are kept and reused by requests that start with the same tokens (default true). */
  prefixCache?: boolean;
  /**
   * A Redis tier under the prefix cache, shared by replicas: `redis://HOST:PORT[/DB]`, `rediss://...`, or
   * `redis+cluster://HOST:PORT,HOST:PORT,...` for Redis Cluster. Blocks are written through as they fill
   * and looked up past the pool's hits; an unreachable Redis only costs computing.
   */
  kvStore?: string;
  /** A disk tier under the prefix cache: a directory for cached blocks (created if missing). */
  kvDisk?: string;
  /** The disk tier's size cap in bytes; least recently used blocks go first (default 4 GiB). */
  kvDiskBytes?: number;
  /** Redis: the longest a command may take before it counts as failed, in ms (default 500). */
  kvStoreTimeoutMs?: number;
  /** Order waiting requests are admitted in: 'prefix' (longest cached prefix first; default) or 'fcfs'. */
  admissionOrder?: AdmissionOrder;
  /** With admissionOrder 'prefix', the longest a request waits past its first-come-first-served turn (ms, default 2000). */
  maxAdmissionDelayMs?: number;
  /**
   * Where a text prompt of a request that sets `blend` is cut into documents (LMCache's convention;
   * default " # # "): the text before the first separator leads, the text after the last is the question.
   */
  blendSeparator?: string;
  /**
   * Blended documents (RAG chunks reused from the chunk store, engine/blend.ts): the share of their tokens
   * recomputed when a request names none (default 0.15).
   */
  blendRecompute?: number;
  /** The layer (0-based) whose key deviation picks the document tokens recomputed after it (default 1). */
  blendLayer?: number;
  /**
   * Gradual filtering: the selection narrows over this many consecutive layers from blendLayer on, keeping
   * a falling share until the last keeps blendRecompute (default 1: one selection).
   */
  blendStages?: number;
  /**
   * What a document's stored KV is computed after: 'prefix' (the prompt's tokens before its first document,
   * the default) or 'bos' (its first token only).
   */
  blendContext?: 'prefix' | 'bos';
  /** Compute threads of the native backend. */
  threads?: number;
  /** 'native' (default) or 'reference' (plain TypeScript, for tests). */
  backend?: 'native' | 'reference';
}

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
