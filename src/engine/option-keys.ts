// The keys generate() parameters may have, checked before anything runs: a typo (the HTTP API's
// `max_tokens`) is an error that names it and the key it probably meant. The Record makes the compiler
// keep the list complete as the parameter type grows. Engine.load's keys are its schema's
// (config/engine-config.ts).
import type { RequestParams } from './completion.js';
import { checkKnownKeys } from './known-keys.js';
import { RequestFaultError } from './error-kind.js';

export { EngineConfigError } from '../config/engine-config-error.js';

/** A generate() parameter the engine does not know. */
export class RequestParamsError extends RequestFaultError {
  override name = 'RequestParamsError';
  constructor(message: string) {
    super(message, 'unknown_parameter');
  }
}

const REQUEST_PARAM_KEYS = Object.keys({
  maxTokens: 1, stop: 1, logprobs: 1, n: 1, cacheSalt: 1, temperature: 1, topK: 1, topP: 1, minP: 1, repetitionPenalty: 1,
  presencePenalty: 1, frequencyPenalty: 1, penaltyLastN: 1, seed: 1, topLogprobs: 1, logitBias: 1, responseFormat: 1, triggeredFormat: 1, tools: 1, kvPolicy: 1, kvBudget: 1, blend: 1, documents: 1,
} satisfies Record<keyof RequestParams, 1>);

/** `extra` names keys the caller handles itself (generate's `signal`). */
export function checkRequestParamKeys(params: RequestParams, extra: readonly string[] = []): void {
  if (typeof params !== 'object' || params === null) throw new RequestParamsError('generate parameters must be an object');
  checkKnownKeys('generate parameter', params, [...REQUEST_PARAM_KEYS, ...extra], (m) => new RequestParamsError(m));
}
