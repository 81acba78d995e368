// Hyperparameters of a decoder-only transformer, read from GGUF metadata under the architecture's own
// prefix (`<arch>.embedding_length`, ...). Every architecture reads the common keys here; an
// architecture file adds what only it has.
import type { GGUFFile } from './gguf/reader.js';
import { readRopeScaling, ropeFreqScaleOf, type RopeScaling, type RopeScalingKeys } from './rope-scaling.js';

export interface ModelConfig {
  /** general.architecture. */
  arch: string;
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
  /** The linear position scale (1 / rope.scaling.factor); YaRN's per-dimension scaling is in ropeScaling. */
  ropeFreqScale: number;
  ropeMode: 'normal' | 'neox';
  /** How RoPE is stretched past the training context; loadRopeOptions resolves it with the file's factor tensors. */
  ropeScaling: RopeScaling;
  /**
   * The sliding window of the model's windowed layers, where it has any. Attention then counts cache
   * rows as positions, so such a model cannot evict tokens (rows would no longer be positions).
   */
  slidingWindow?: number;
}

export class ModelConfigError extends Error {
  override name = 'ModelConfigError';
}

/** Reads `<arch>.*` metadata with checks, naming the file and key in every error. */
export class MetadataReader {
  readonly where: string;

  constructor(readonly file: GGUFFile, readonly arch: string) {
    this.where = file.path ?? 'model';
  }

  has(key: string): boolean {
    return this.file.get(`${this.arch}.${key}`) !== undefined;
  }

  number(key: string, fallback?: number): number {
    const v = this.file.get(`${this.arch}.${key}`);
    if (v === undefined && fallback !== undefined) return fallback;
    if (typeof v !== 'number' || !Number.isFinite(v)) {
      throw new ModelConfigError(`${this.where}: metadata ${this.arch}.${key} is ${v === undefined ? 'missing' : `not a number (${String(v)})`}`);
    }
    return v;
  }

  size(key: string, fallback?: number): number {
    const v = this.number(key, fallback);
    if (!Number.isInteger(v) || v <= 0 || v > 1 << 24) throw new ModelConfigError(`${this.where}: ${this.arch}.${key} = ${v} is not a sensible size`);
    return v;
  }

  string(key: string): string | undefined {
    const v = this.file.get(`${this.arch}.${key}`);
    return typeof v === 'string' ? v : undefined;
  }
}

/** The keys every architecture shares, with Llama's defaults where a file may omit them. */
export function readCommonConfig(m: MetadataReader, ropeMode: 'normal' | 'neox', ropeKeys: RopeScalingKeys = {}): ModelConfig {
  const where = m.where;
  const dim = m.size('embedding_length');
  const nHeads = m.size('attention.head_count');
  const nKVHeads = m.size('attention.head_count_kv', nHeads);
  if (nHeads % nKVHeads !== 0) throw new ModelConfigError(`${where}: ${nHeads} heads are not a multiple of ${nKVHeads} KV heads`);
  const headDim = m.size('attention.key_length', dim / nHeads);
  const tokens = m.file.get<string[]>('tokenizer.ggml.tokens');
  const vocabSize = m.size('vocab_size', Array.isArray(tokens) ? tokens.length : NaN);
  const ropeDim = m.size('rope.dimension_count', headDim);
  if (ropeDim > headDim || ropeDim % 2) throw new ModelConfigError(`${where}: rope.dimension_count ${ropeDim} must be even and <= head size ${headDim}`);
  const contextLength = m.size('context_length');
  const ropeScaling = readRopeScaling(m, contextLength, ropeKeys);
  return {
    arch: m.arch,
    name: String(m.file.get('general.name') ?? m.arch),
    dim,
    nLayers: m.size('block_count'),
    nHeads,
    nKVHeads,
    headDim,
    ffnDim: m.size('feed_forward_length'),
    vocabSize,
    contextLength,
    normEps: m.number('attention.layer_norm_rms_epsilon', 1e-5),
    ropeDim,
    ropeFreqBase: m.number('rope.freq_base', 10000),
    ropeFreqScale: ropeFreqScaleOf(ropeScaling),
    ropeMode,
    ropeScaling,
  };
}
