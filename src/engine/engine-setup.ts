// From EngineOptions to a running EngineCore: the parsed configuration (config/engine-config.ts) checked
// against the model, the KV adapter for the chosen manager, and the scheduling policy.
import type { ChatTemplate } from '../model/chat-template.js';
import type { TransformerModel } from '../model/transformer.js';
import type { Tokenizer } from '../model/tokenizer/index.js';
import type { GenerationTokenizer } from './completion.js';
import { EngineCore, type ChatRenderer } from './engine-core.js';
import type { EngineKV } from './engine-kv.js';
import type { EngineOptions } from './engine-types.js';
import { resolveEviction, type EvictionRequest } from './kv-eviction.js';
import { ManagedKV, type ManagedKVOptions } from './managed-kv.js';
import { modelFingerprint } from '../model/fingerprint.js';
import { EngineConfigError } from '../config/engine-config-error.js';
import { DEFAULT_CONTEXT_CAP, parseEngineConfig, type EngineConfig } from '../config/engine-config.js';
import { resolveKVType } from '../config/kv-type-option.js';
import { resolveShape } from '../kv/shape.js';
import type { Scheduler, SchedulerKind, SchedulerLimits } from './scheduler.js';
import { SarathiScheduler } from './scheduler-sarathi.js';
import { StaticScheduler } from './scheduler-static.js';
import { VllmScheduler } from './scheduler-vllm.js';
import { renderChat } from './prompt-encoder.js';
import type { BlendSettings } from './blend.js';


/** The parsed configuration with the model's part filled in: maxContext. */
export type ResolvedEngineOptions = EngineConfig & { maxContext: number };

export { resolveKVType };

/** Parses `opts` with the engine's schema, and checks maxContext against the model's context. */
export function resolveEngineOptions(opts: EngineOptions, modelContext: number): ResolvedEngineOptions {
  const config = parseEngineConfig(opts);
  const maxContext = config.maxContext ?? Math.min(modelContext, DEFAULT_CONTEXT_CAP);
  if (maxContext > modelContext) throw new EngineConfigError(`maxContext must be an integer between 2 and ${modelContext}, got ${maxContext}`);
  return { ...config, maxContext };
}

export function createScheduler(kind: SchedulerKind, kv: EngineKV, limits: SchedulerLimits): Scheduler {
  switch (kind) {
    case 'sarathi': return new SarathiScheduler(kv, limits);
    case 'vllm': return new VllmScheduler(kv, limits);
    case 'static': return new StaticScheduler(kv, limits);
  }
}

/** Builds the KV cache and scheduler for a loaded model. */
export function createEngineCore(
  model: TransformerModel,
  tokenizer: GenerationTokenizer,
  opts: EngineOptions = {},
  chat?: ChatRenderer,
  /** Tiers below the pool (ManagedKVOptions.tiers). */
  tiers?: ManagedKVOptions['tiers'],
): EngineCore {
  const c = model.config;
  const r = resolveEngineOptions(opts, c.contextLength);
  try {
    // The formats fit the model's row, and the residual is whole groups: the managers' own checks, made
    // before anything is allocated so that they come back as configuration errors.
    resolveShape({ layers: c.nLayers, kvHeads: c.nKVHeads, headDim: c.headDim, maxSlots: 1, maxContext: r.maxContext, type: r.kvType, residual: r.kvResidual });
  } catch (e) {
    throw new EngineConfigError((e as Error).message);
  }
  const kv = ManagedKV.create(
    { nLayers: c.nLayers, kvHeads: c.nKVHeads, headDim: c.headDim, maxSlots: r.maxSeqs, maxContext: r.maxContext, kvType: r.kvType, residual: r.kvResidual, rotate: r.kvRotate },
    {
      kind: r.kvManager, kvMemory: r.kvMemory, pageSize: r.pageSize, blockSize: r.blockSize, prefixCache: r.prefixCache, fingerprint: modelFingerprint(model.file), tiers,
      shiftKeys: (view, slot, first, count, delta) => model.shiftKeys(view, slot, first, count, delta),
    },
  );
  const pool = kv.stats();
  const fullContext = kv.pagesFor(r.maxContext);
  if (pool.totalPages < fullContext) {
    kv.close();
    throw new EngineConfigError(
      `kvMemory holds ${pool.totalPages} pages of ${pool.pageBytes} bytes, fewer than one sequence at maxContext ` +
        `(${r.maxContext} tokens need ${fullContext} pages = ${fullContext * pool.pageBytes} bytes); raise kvMemory or lower maxContext`,
    );
  }
  const limits: SchedulerLimits = {
    maxSeqs: r.maxSeqs,
    maxBatchTokens: r.maxBatchTokens,
    watermarkPages: Math.floor(pool.totalPages * r.watermark),
    admissionOrder: r.admissionOrder,
    maxAdmissionDelayMs: r.maxAdmissionDelayMs,
  };
  const evictionDefaults: EvictionRequest = { policy: r.kvPolicy as EvictionRequest['policy'], budget: r.kvBudget };
  try {
    // Checked as a request would be (names and ranges), and against this cache.
    const evicts = resolveEviction(evictionDefaults, r.maxContext, r.maxContext) !== undefined;
    if (evicts && !kv.eviction) throw new Error('caches with a residual window (KIVI) cannot evict tokens');
    // Windowed attention counts cache rows as positions, which eviction breaks.
    if (evicts && c.slidingWindow !== undefined) throw new Error(`kv_policy: this model attends through a sliding window of ${c.slidingWindow} positions, which evicted caches cannot keep`);
  } catch (e) {
    kv.close();
    throw new EngineConfigError((e as Error).message.replace(/^kv_policy/, 'kvPolicy').replace(/^kv_budget/, 'kvBudget'));
  }
  if (r.blendLayer >= c.nLayers) {
    kv.close();
    throw new EngineConfigError(`blendLayer must be below the model's ${c.nLayers} layers, got ${r.blendLayer}`);
  }
  const blend: BlendSettings = { recompute: r.blendRecompute, layer: r.blendLayer, stages: r.blendStages, context: r.blendContext };
  return new EngineCore(model, tokenizer, kv, createScheduler(r.scheduler, kv, limits), chat, evictionDefaults, blend);
}

/** The worker's chat renderer (the main thread normally sends token ids already; see PromptEncoder). */
export function chatRenderer(template: ChatTemplate, tokenizer: Tokenizer): ChatRenderer {
  return (messages) => renderChat(template, tokenizer, messages);
}
