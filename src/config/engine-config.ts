// Engine.load's options as one zod schema: each option's type, range, default, description and CLI flag
// in one place. Engine.load, the worker, `vserve serve` and the CLI help all read them from here, so a
// default or a range is stated once. Rules that need the model (maxContext within the model's context,
// blendLayer below its layer count, a pool that holds one full sequence) are checked where the model is
// loaded, against the parsed configuration.
import { z } from 'zod';
import type { BackendKind, SumOrder } from '../backend/index.js';
import type { AdmissionOrder, SchedulerKind } from '../engine/scheduler.js';
import { MAX_THREADS } from '../backend/native/native-env.js';
import { DEFAULT_KIVI_RESIDUAL } from '../kv/format.js';
import type { KVManagerKind } from '../kv/manager.js';
import { checkKnownKeys } from '../engine/known-keys.js';
import { EngineConfigError } from './engine-config-error.js';
import { resolveKVType, type KVTypeOption } from './kv-type-option.js';
import { anyNumber, choice, flag, fraction, fractionBelowOne, integer, nonEmptyText, option, optionInfo, text, type OptionInfo } from './option-fields.js';

const KV_MANAGERS = ['virtual', 'paged', 'static'] as const satisfies readonly KVManagerKind[];
const SCHEDULERS = ['sarathi', 'vllm', 'static'] as const satisfies readonly SchedulerKind[];
const ADMISSION_ORDERS = ['prefix', 'fcfs'] as const satisfies readonly AdmissionOrder[];
const BACKENDS = ['native', 'reference'] as const satisfies readonly BackendKind[];
const SUM_ORDERS = ['fast', 'llama.cpp'] as const satisfies readonly SumOrder[];
export const BLEND_CONTEXTS = ['prefix', 'bos'] as const;

/** maxContext's default: the model's context, but at most this many tokens (a laptop-sized KV pool). */
export const DEFAULT_CONTEXT_CAP = 2048;

/** The formats' own checks (names, { k, v } keys) as issues of the kvType field. */
const kvType = z.custom<KVTypeOption>().optional().transform((v, ctx) => {
  try {
    return resolveKVType(v);
  } catch (e) {
    ctx.issues.push({ code: 'custom', message: (e as Error).message, input: v });
    return z.NEVER;
  }
});

export const engineConfigSchema = z.object({
  kvManager: option(choice(KV_MANAGERS).default('virtual'), { description: 'KV-cache manager: virtual, paged or static', flag: '--kv-manager' }),
  kvMemory: option(integer(1).optional(), { description: 'KV pool budget in bytes (default: every slot at full context)', flag: '--kv-memory' }),
  pageSize: option(integer(1).optional(), { description: 'virtual manager: bytes per page (default: chosen from kvMemory)', flag: '--page-size' }),
  kvType: option(kvType, { description: 'formats of K and V in the cache: one format name for both, kivi2, kivi4, or { k, v }', flag: '--kv-type' }),
  kvResidual: option(integer(0, 1 << 16).optional(), { description: `newest tokens of each sequence kept f16 before they are encoded (default: ${DEFAULT_KIVI_RESIDUAL} with KIVI, 0 otherwise)`, flag: '--kv-residual' }),
  kvRotate: option(flag().optional(), { description: 'store K and V Walsh-Hadamard rotated (default: on with q8_0 and q4_0)', flag: '--kv-rotate' }),
  // Names and budgets are checked as a request's are, against maxContext (engine/kv-eviction.ts).
  kvPolicy: option(text().optional(), { description: 'KV eviction policy of requests that name none (default none)', flag: '--kv-policy' }),
  kvBudget: option(anyNumber().optional(), { description: 'tokens the policy keeps, or a fraction of the prompt', flag: '--kv-budget' }),
  blockSize: option(integer(1).optional(), { description: "paged manager: tokens per block (default 16, or the format's group if larger)", flag: '--block-size' }),
  maxSeqs: option(integer(1, 4096).default(16), { description: 'sequences running at once (KV slots)', flag: '--max-seqs' }),
  maxBatchTokens: option(integer(1).default(512), { description: 'token budget per step', flag: '--max-batch-tokens' }),
  maxContext: option(integer(2).optional(), { description: `context per sequence, prompt included (default: the model's, at most ${DEFAULT_CONTEXT_CAP})`, flag: '--max-context' }),
  scheduler: option(choice(SCHEDULERS).default('sarathi'), { description: 'batching policy: sarathi, vllm or static', flag: '--scheduler' }),
  watermark: option(fractionBelowOne().default(0.01), { description: 'fraction of the KV pool admission keeps free for running sequences to grow' }),
  prefixCache: option(flag().default(true), { description: 'keep computed KV blocks for requests that start with the same tokens', flag: '--no-prefix-cache', reword: false }),
  kvStore: option(text().optional(), { description: 'a Redis tier under the prefix cache: redis://, rediss:// or redis+cluster:// address', flag: '--kv-store' }),
  kvDisk: option(text().optional(), { description: 'a disk tier under the prefix cache: a directory (created if missing)', flag: '--kv-disk' }),
  kvDiskBytes: option(integer(1).default(4 * 2 ** 30), { description: "the disk tier's cap in bytes; least recently used blocks go first", flag: '--kv-disk-size' }),
  kvStoreTimeoutMs: option(integer(1).default(500), { description: 'the longest a Redis command may take before it counts as failed (ms)', flag: '--kv-store-timeout' }),
  admissionOrder: option(choice(ADMISSION_ORDERS).default('prefix'), { description: 'order waiting requests are admitted in: prefix (longest cached prefix first) or fcfs', flag: '--admission' }),
  maxAdmissionDelayMs: option(integer(0).default(2000), { description: "with admission order prefix, the longest a request waits past its first-come turn (ms)" }),
  blendSeparator: option(nonEmptyText().default(' # # '), { description: 'where a text prompt that sets blend is cut into documents', flag: '--blend-separator' }),
  blendRecompute: option(fraction().default(0.15), { description: "share of a blended document's tokens recomputed when a request names none", flag: '--blend-recompute' }),
  blendLayer: option(integer(0).default(1), { description: 'the layer (0-based) whose key deviation picks the document tokens recomputed', flag: '--blend-layer' }),
  blendStages: option(integer(1).default(1), { description: 'gradual filtering: layers from blendLayer on over which the selection narrows', flag: '--blend-stages' }),
  blendContext: option(choice(BLEND_CONTEXTS).default('prefix'), { description: "what a document's stored KV is computed after: prefix or bos", flag: '--blend-context' }),
  threads: option(integer(1, MAX_THREADS).optional(), { description: 'compute threads of the native backend (default: physical cores)', flag: '--threads' }),
  sumOrder: option(choice(SUM_ORDERS).default('fast'), { description: "how prefill matmuls add up: fast, or llama.cpp (its partial sums: its results to the bit, prefill matmuls 2-3x slower)", flag: '--sum-order' }),
  backend: option(choice(BACKENDS).default('native'), { description: 'native, or reference (plain TypeScript, for tests)', flag: '--backend', reword: false }),
});

/** Engine.load's options as callers write them: every key optional. */
export type EngineOptions = z.input<typeof engineConfigSchema>;
/** The options with every default filled in and every value checked. */
export type EngineConfig = z.output<typeof engineConfigSchema>;
export type EngineOptionName = keyof EngineOptions;

export const ENGINE_OPTION_NAMES = Object.keys(engineConfigSchema.shape) as EngineOptionName[];

/** The option's description and flag. */
export function engineOptionInfo(name: EngineOptionName): OptionInfo {
  return optionInfo.get(engineConfigSchema.shape[name])!;
}

/** Checks `options` and fills in the defaults; the first fault is an EngineConfigError naming the option. */
export function parseEngineConfig(options: EngineOptions): EngineConfig {
  if (typeof options !== 'object' || options === null) throw new EngineConfigError('Engine.load options must be an object');
  // Before the schema: a typo gets the nearest known name rather than "unrecognized key".
  checkKnownKeys('Engine.load option', options, ENGINE_OPTION_NAMES, (m) => new EngineConfigError(m));
  const parsed = engineConfigSchema.safeParse(options);
  if (parsed.success) return parsed.data;
  const issue = parsed.error.issues[0]!;
  const name = issue.path.join('.');
  // kvType's own messages name the key (kvType.k) already.
  throw new EngineConfigError(issue.message.startsWith(name) ? issue.message : `${name} ${issue.message}`);
}

/** Every option's default, as Engine.load fills it in (options the engine derives elsewhere are undefined). */
export const ENGINE_DEFAULTS: EngineConfig = engineConfigSchema.parse({});
