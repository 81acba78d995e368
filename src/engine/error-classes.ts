// The library's error classes by name. An error thrown on the engine's worker crosses to the main thread
// as a plain description (error-kind.ts); it is rebuilt here as the class it was thrown as, so that
// `instanceof GGUFError` works on a failed Engine.load and a KVError keeps its code. A name not listed
// stays a plain Error: the class cannot be guessed, and it is classified by its kind and code alone.
import { ChatTemplateError } from '../model/chat-template.js';
import { GGUFError } from '../model/gguf/errors.js';
import { ModelConfigError } from '../model/model-config.js';
import { TokenizerError } from '../model/tokenizer/errors.js';
import { KVError, type KVErrorCode } from '../kv/errors.js';
import { NativeAddonError } from '../backend/native/addon.js';
import { ContextLengthError } from './completion.js';
import { EngineClosedError, InternalEngineError, RequestFaultError, type ErrorDescription } from './error-kind.js';
import { ModelFaultError } from './finite-logits.js';
import { EngineConfigError, RequestParamsError } from './option-keys.js';
import { SamplingError } from './sampler.js';

/**
 * Each class's own constructor, fed from the description: a class that fixes its code (ContextLengthError,
 * RequestParamsError) sets it again itself. A class is listed under the name its instances carry.
 */
const REBUILDERS: Record<string, (d: ErrorDescription) => Error> = {
  GGUFError: (d) => new GGUFError(d.message),
  ModelConfigError: (d) => new ModelConfigError(d.message),
  TokenizerError: (d) => new TokenizerError(d.message),
  ChatTemplateError: (d) => new ChatTemplateError(d.message),
  NativeAddonError: (d) => new NativeAddonError(d.message),
  KVError: (d) => new KVError((d.code ?? 'ERR_KV_SYSTEM') as KVErrorCode, d.message),
  EngineConfigError: (d) => new EngineConfigError(d.message),
  RequestParamsError: (d) => new RequestParamsError(d.message),
  RequestFaultError: (d) => new RequestFaultError(d.message, d.code, d.param),
  ContextLengthError: (d) => new ContextLengthError(d.message, d.param),
  SamplingError: (d) => new SamplingError(d.param ?? '', d.message),
  InternalEngineError: (d) => new InternalEngineError(d.code ?? 'internal_error', d.message),
  ModelFaultError: (d) => new ModelFaultError(d.code ?? 'internal_error', d.message),
  EngineClosedError: (d) => new EngineClosedError(d.message),
};

/** The names rebuilt as their own class. */
export const REBUILT_ERROR_NAMES: readonly string[] = Object.keys(REBUILDERS);

/** The error a description stands for, as the class it was thrown as when that class is listed above. */
export function rebuildError(d: ErrorDescription): Error {
  const rebuild = Object.hasOwn(REBUILDERS, d.name) ? REBUILDERS[d.name]! : undefined;
  const e = rebuild ? rebuild(d) : unlisted(d);
  // The worker's stack says where it went wrong; this thread's would only say where it was rebuilt.
  if (d.stack !== undefined) e.stack = d.stack;
  return e;
}

function unlisted(d: ErrorDescription): Error {
  const e = new Error(d.message);
  e.name = d.name;
  return Object.assign(e, {
    ...(d.kind !== undefined ? { kind: d.kind } : {}),
    ...(d.code !== undefined ? { code: d.code } : {}),
    ...(d.param !== undefined ? { param: d.param } : {}),
  });
}
