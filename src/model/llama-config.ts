// Hyperparameters of a Llama-family model, read from GGUF metadata. Mistral GGUFs use the "llama"
// architecture; Qwen2 differs only in QKV biases and NeoX-style RoPE.
import type { GGUFFile } from './gguf/reader.js';

export type LlamaArch = 'llama' | 'qwen2';
const SUPPORTED: readonly string[] = ['llama', 'qwen2'];

export interface LlamaConfig {
  arch: LlamaArch;
  name: string;
  dim: number;
  nLayers: number;
  nHeads: number;
  nKVHeads: number;
  headDim: number;
  ffnDim: number;
  vocabSize: number;
  contextLength: number;
  normEps: number;
  ropeDim: number;
  ropeFreqBase: number;
  ropeFreqScale: number;
  ropeMode: 'normal' | 'neox';
}

export class ModelConfigError extends Error {
  override name = 'ModelConfigError';
}

export function readLlamaConfig(file: GGUFFile): LlamaConfig {
  const where = file.path ?? 'model';
  const arch = file.get<string>('general.architecture');
  if (typeof arch !== 'string') throw new ModelConfigError(`${where}: general.architecture is missing`);
  if (!SUPPORTED.includes(arch)) {
    throw new ModelConfigError(`${where}: unsupported architecture "${arch}" (supported: ${SUPPORTED.join(', ')})`);
  }
  const num = (key: string, fallback?: number): number => {
    const v = file.get(`${arch}.${key}`);
    if (v === undefined && fallback !== undefined) return fallback;
    if (typeof v !== 'number' || !Number.isFinite(v)) {
      throw new ModelConfigError(`${where}: metadata ${arch}.${key} is ${v === undefined ? 'missing' : `not a number (${String(v)})`}`);
    }
    return v;
  };
  const positiveInt = (key: string, v: number): number => {
    if (!Number.isInteger(v) || v <= 0 || v > 1 << 24) throw new ModelConfigError(`${where}: ${arch}.${key} = ${v} is not a sensible size`);
    return v;
  };
  const dim = positiveInt('embedding_length', num('embedding_length'));
  const nHeads = positiveInt('attention.head_count', num('attention.head_count'));
  const nKVHeads = positiveInt('attention.head_count_kv', num('attention.head_count_kv', nHeads));
  if (nHeads % nKVHeads !== 0) throw new ModelConfigError(`${where}: ${nHeads} heads are not a multiple of ${nKVHeads} KV heads`);
  const headDim = positiveInt('attention.key_length', num('attention.key_length', dim / nHeads));
  const tokens = file.get<string[]>('tokenizer.ggml.tokens');
  const vocabSize = positiveInt('vocab_size', num('vocab_size', Array.isArray(tokens) ? tokens.length : NaN));
  const ropeDim = positiveInt('rope.dimension_count', num('rope.dimension_count', headDim));
  if (ropeDim > headDim || ropeDim % 2) throw new ModelConfigError(`${where}: rope.dimension_count ${ropeDim} must be even and <= head size ${headDim}`);
  const scalingType = file.get(`${arch}.rope.scaling.type`);
  const scalingFactor = file.get(`${arch}.rope.scaling.factor`);
  const ropeFreqScale = scalingType === 'linear' && typeof scalingFactor === 'number' && scalingFactor > 0 ? 1 / scalingFactor : 1;
  return {
    arch: arch as LlamaArch,
    name: String(file.get('general.name') ?? arch),
    dim,
    nLayers: positiveInt('block_count', num('block_count')),
    nHeads,
    nKVHeads,
    headDim,
    ffnDim: positiveInt('feed_forward_length', num('feed_forward_length')),
    vocabSize,
    contextLength: positiveInt('context_length', num('context_length')),
    normEps: num('attention.layer_norm_rms_epsilon', 1e-5),
    ropeDim,
    ropeFreqBase: num('rope.freq_base', 10000),
    ropeFreqScale,
    ropeMode: arch === 'qwen2' ? 'neox' : 'normal',
  };
}
