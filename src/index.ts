// vserve's library entry point.
export { Engine, EngineClosedError, type GenerateCallOptions, type GenerateParams } from './engine/engine.js';
export { EngineConfigError, RequestParamsError } from './engine/option-keys.js';
// Engine.load's options: one schema with each option's range, default, description and CLI flag.
export { ENGINE_DEFAULTS, ENGINE_OPTION_NAMES, engineConfigSchema, engineOptionInfo, parseEngineConfig, type EngineConfig, type EngineOptionName } from './config/engine-config.js';
export type {
  AdmissionOrder, ChatMessage, ChatTextPart, EngineDelta, EngineFinishReason, EngineInfo, EngineInput, EngineOptions, EngineStats, KVStats, PrefixCacheStats,
  RequestParams, RequestTimings, StepStats, Usage,
} from './engine/engine-types.js';

// Models: GGUF files, tokenizers, chat templates, the Llama-family forward pass.
export { GGUFFile, type GGUFTensorInfo } from './model/gguf/reader.js';
export { GGUFError } from './model/gguf/errors.js';
export { GGMLType, GGUFValueType, typeName, type GGUFValue } from './model/gguf/types.js';
export { dequantize } from './model/gguf/dequant.js';
export { createTokenizer, StreamingDetokenizer, TokenizerError, type Tokenizer, type EncodeOptions, type DecodeOptions } from './model/tokenizer/index.js';
export { ChatTemplate, ChatTemplateError } from './model/chat-template.js';
export { TransformerModel } from './model/transformer.js';
export type { Batch } from './model/batch.js';
export { readModelConfig, SUPPORTED_ARCHITECTURES } from './model/architectures/index.js';
export { ModelConfigError, type ModelConfig } from './model/model-config.js';
export { loadModel, type LoadOptions, type LoadedModel } from './model/load.js';

// Backends: the native kernels and the plain-TypeScript reference.
export { createBackend, type BackendKind, type BackendOptions } from './backend/index.js';
export type { Backend, ContiguousKV, KVView, PagedKV, Weight } from './backend/backend.js';
export { ReferenceBackend } from './backend/reference/reference-backend.js';
export { ArrayKV } from './backend/array-kv.js';

// Generation pieces: sampling, stop strings, the single-sequence loop.
export { Sampler, SamplingError, validateSamplingParams, type SamplingParams, type SampledToken } from './engine/sampler.js';
export { StopMatcher } from './engine/stop-matcher.js';
// Errors: each crosses the engine's worker as its own class (engine/error-classes.ts), with its kind and code.
export { RequestFaultError, InternalEngineError, ENGINE_CLOSED, type ErrorKind } from './engine/error-kind.js';
export { ModelFaultError } from './engine/finite-logits.js';
export { KVError, isKVError, type KVErrorCode } from './kv/errors.js';
export { NativeAddonError } from './backend/native/addon.js';
export type { ResponseFormat } from './constrained/json-schema.js';
export { generate, ContextLengthError, type GenerateOptions, type GenerateDelta, type GenerateSummary } from './engine/generate.js';
