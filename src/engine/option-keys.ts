// The keys Engine.load options and generate() parameters may have, checked before anything runs: a typo
// (`kvManagr`, or the HTTP API's `max_tokens`) is an error that names it and the key it probably meant.
// The Records make the compiler keep each list complete as the option types grow.
import type { RequestParams } from './completion.js';
import type { EngineOptions } from './engine-types.js';
import { checkKnownKeys } from './known-keys.js';
import { RequestFaultError } from './error-kind.js';

export class EngineConfigError extends RangeError {
  override name = 'EngineConfigError';
}

/** A generate() parameter the engine does not know. */
export class RequestParamsError extends RequestFaultError {
  override name = 'RequestParamsError';
  constructor(message: string) {
    super(message, 'unknown_parameter');
  }
}

const ENGINE_OPTION_KEYS = Object.keys({
  kvManager: 1, kvMemory: 1, pageSize: 1, kvType: 1, kvResidual: 1, kvRotate: 1, kvPolicy: 1, kvBudget: 1, blockSize: 1, maxSeqs: 1, maxBatchTokens: 1, maxContext: 1, scheduler: 1, watermark: 1,
  prefixCache: 1, kvStore: 1, kvDisk: 1, kvDiskBytes: 1, kvStoreTimeoutMs: 1, admissionOrder: 1, maxAdmissionDelayMs: 1, blendSeparator: 1, blendRecompute: 1, blendLayer: 1, blendStages: 1, blendContext: 1, threads: 1, backend: 1,
} satisfies Record<keyof EngineOptions, 1>);

const REQUEST_PARAM_KEYS = Object.keys({
  maxTokens: 1, stop: 1, logprobs: 1, n: 1, cacheSalt: 1, temperature: 1, topK: 1, topP: 1, minP: 1, repetitionPenalty: 1,
  presencePenalty: 1, frequencyPenalty: 1, penaltyLastN: 1, seed: 1, topLogprobs: 1, logitBias: 1, responseFormat: 1, triggeredFormat: 1, tools: 1, kvPolicy: 1, kvBudget: 1, blend: 1, documents: 1,
} satisfies Record<keyof RequestParams, 1>);

export function checkEngineOptionKeys(opts: EngineOptions): void {
  if (typeof opts !== 'object' || opts === null) throw new EngineConfigError('Engine.load options must be an object');
  checkKnownKeys('Engine.load option', opts, ENGINE_OPTION_KEYS, (m) => new EngineConfigError(m));
}

/** `extra` names keys the caller handles itself (generate's `signal`). */
export function checkRequestParamKeys(params: RequestParams, extra: readonly string[] = []): void {
  if (typeof params !== 'object' || params === null) throw new RequestParamsError('generate parameters must be an object');
  checkKnownKeys('generate parameter', params, [...REQUEST_PARAM_KEYS, ...extra], (m) => new RequestParamsError(m));
}
