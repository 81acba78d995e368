// From EngineOptions to a running EngineCore: defaults, validation with messages a user can act on,
// the KV adapter for the chosen manager, and the scheduling policy.
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
import { checkEngineOptionKeys, EngineConfigError } from './option-keys.js';
import { checkKnownKeys } from './known-keys.js';
import { resolveShape } from '../kv/shape.js';
import { DEFAULT_KV_TYPE, isKVFormatName, KIVI_TYPES, KV_FORMAT_NAMES, type KIVIName, type KVFormatName, type KVType } from '../kv/format.js';
import type { AdmissionOrder, Scheduler, SchedulerKind, SchedulerLimits } from './scheduler.js';
import { SarathiScheduler } from './scheduler-sarathi.js';
import { StaticScheduler } from './scheduler-static.js';
import { VllmScheduler } from './scheduler-vllm.js';
import { renderChat } from './prompt-encoder.js';
import { resolveBlendSeparator } from './prompt-documents.js';
import { BLEND_CONTEXTS, DEFAULT_BLEND, type BlendSettings } from './blend.js';


export interface ResolvedEngineOptions {
  kvManager: 'virtual' | 'paged' | 'static';
  scheduler: SchedulerKind;
  maxSeqs: number;
  maxBatchTokens: number;
  maxContext: number;
  watermark: number;
  prefixCache: boolean;
  admissionOrder: AdmissionOrder;
  maxAdmissionDelayMs: number;
  kvType: KVType;
  /** Newest tokens kept f16 (undefined: the formats' default). */
  kvResidual: number | undefined;
  /** undefined: the formats' default. */
  kvRotate: boolean | undefined;
  blendSeparator: string;
  blend: BlendSettings;
}

/** Engine.load's kvType: one format name for K and V, or { k, v } with either left at the default. */
export function resolveKVType(v: EngineOptions['kvType']): KVType {
  if (v === undefined) return DEFAULT_KV_TYPE;
  const name = (x: unknown, what: string): KVFormatName => {
    if (isKVFormatName(x)) return x;
    const kivi = what === 'kvType' ? `, ${Object.keys(KIVI_TYPES).join(', ')}` : '';
    throw new EngineConfigError(`${what} must be one of ${KV_FORMAT_NAMES.join(', ')}${kivi}, got ${JSON.stringify(x)}`);
  };
  if (typeof v === 'string' && v in KIVI_TYPES) return { ...KIVI_TYPES[v as KIVIName] };
  if (typeof v === 'string') {
    const f = name(v, 'kvType');
    return { k: f, v: f };
  }
  if (typeof v !== 'object' || v === null) throw new EngineConfigError(`kvType must be a format name or { k, v }, got ${JSON.stringify(v)}`);
  checkKnownKeys('kvType key', v, ['k', 'v'], (m) => new EngineConfigError(m));
  return { k: v.k === undefined ? DEFAULT_KV_TYPE.k : name(v.k, 'kvType.k'), v: v.v === undefined ? DEFAULT_KV_TYPE.v : name(v.v, 'kvType.v') };
}

export function resolveEngineOptions(opts: EngineOptions, modelContext: number): ResolvedEngineOptions {
  checkEngineOptionKeys(opts);
  const int = (name: string, v: number | undefined, def: number, min: number, max = Infinity) => {
    const x = v ?? def;
    if (!(Number.isInteger(x) && x >= min && x <= max)) {
      throw new EngineConfigError(`${name} must be an integer ${max < Infinity ? `between ${min} and ${max}` : `of at least ${min}`}, got ${String(v)}`);
    }
    return x;
  };
  const oneOf = <T extends string>(name: string, v: T | undefined, def: T, all: readonly T[]): T => {
    const x = v ?? def;
    if (!all.includes(x)) throw new EngineConfigError(`${name} must be one of ${all.join(', ')}, got ${String(v)}`);
    return x;
  };
  const bool = (name: string, v: boolean | undefined, def: boolean) => {
    if (v !== undefined && typeof v !== 'boolean') throw new EngineConfigError(`${name} must be true or false, got ${JSON.stringify(v)}`);
    return v ?? def;
  };
  const fraction = (name: string, v: number | undefined, def: number) => {
    const x = v ?? def;
    if (!(typeof x === 'number' && x >= 0 && x <= 1)) throw new EngineConfigError(`${name} must be a number from 0 to 1, got ${JSON.stringify(v)}`);
    return x;
  };
  const watermark = opts.watermark ?? 0.01;
  if (!(watermark >= 0 && watermark < 1)) throw new EngineConfigError(`watermark must be a fraction in [0, 1), got ${String(opts.watermark)}`);
  return {
    kvManager: oneOf('kvManager', opts.kvManager, 'virtual', ['virtual', 'paged', 'static']),
    scheduler: oneOf('scheduler', opts.scheduler, 'sarathi', ['sarathi', 'vllm', 'static']),
    maxSeqs: int('maxSeqs', opts.maxSeqs, 16, 1, 4096),
    maxBatchTokens: int('maxBatchTokens', opts.maxBatchTokens, 512, 1),
    maxContext: int('maxContext', opts.maxContext, Math.min(modelContext, 2048), 2, modelContext),
    watermark,
    prefixCache: opts.prefixCache ?? true,
    admissionOrder: oneOf('admissionOrder', opts.admissionOrder, 'prefix', ['prefix', 'fcfs']),
    maxAdmissionDelayMs: int('maxAdmissionDelayMs', opts.maxAdmissionDelayMs, 2000, 0),
    kvType: resolveKVType(opts.kvType),
    kvResidual: opts.kvResidual === undefined ? undefined : int('kvResidual', opts.kvResidual, 0, 0, 1 << 16),
    kvRotate: opts.kvRotate === undefined ? undefined : bool('kvRotate', opts.kvRotate, false),
    blendSeparator: resolveBlendSeparator(opts.blendSeparator),
    blend: {
      recompute: fraction('blendRecompute', opts.blendRecompute, DEFAULT_BLEND.recompute),
      layer: int('blendLayer', opts.blendLayer, DEFAULT_BLEND.layer, 0),
      stages: int('blendStages', opts.blendStages, DEFAULT_BLEND.stages, 1),
      context: oneOf('blendContext', opts.blendContext, DEFAULT_BLEND.context, BLEND_CONTEXTS),
    },
  };
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
      kind: r.kvManager, kvMemory: opts.kvMemory, pageSize: opts.pageSize, blockSize: opts.blockSize, prefixCache: r.prefixCache, fingerprint: modelFingerprint(model.file), tiers,
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
  const evictionDefaults: EvictionRequest = { policy: opts.kvPolicy as EvictionRequest['policy'], budget: opts.kvBudget };
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
  if (r.blend.layer >= c.nLayers) {
    kv.close();
    throw new EngineConfigError(`blendLayer must be below the model's ${c.nLayers} layers, got ${r.blend.layer}`);
  }
  return new EngineCore(model, tokenizer, kv, createScheduler(r.scheduler, kv, limits), chat, evictionDefaults, r.blend);
}

/** The worker's chat renderer (the main thread normally sends token ids already; see PromptEncoder). */
export function chatRenderer(template: ChatTemplate, tokenizer: Tokenizer): ChatRenderer {
  return (messages) => renderChat(template, tokenizer, messages);
}
