// What an architecture file provides (DESIGN.md §8.6): how to read its hyperparameters, and how to
// assemble its layers from the shared blocks. The registry (architectures/index.ts) picks one by
// general.architecture.
import type { Weight } from '../backend/backend.js';
import type { DecoderLayer } from './blocks/decoder-layer.js';
import type { MetadataReader, ModelConfig } from './model-config.js';
import type { WeightLoader } from './weight-loader.js';

/** Everything a forward pass runs, loaded onto a backend. */
export interface ModelParts {
  tokenEmbd: Weight;
  /** Multiplies the embeddings before the first layer (Gemma: sqrt(dim)). */
  embedScale?: number;
  layers: DecoderLayer[];
  outputNorm: Float32Array;
  output: Weight;
  /** Final logits become c * tanh(logits / c) (Gemma 2). */
  logitSoftcap?: number;
}

/** What the model is loaded for, beyond the file. */
export interface LoadContext {
  /** The tokens one sequence may hold (LongRoPE picks its factors by it, as llama.cpp does). */
  contextSize: number;
}

export interface Architecture<C extends ModelConfig = ModelConfig> {
  /** The general.architecture value it runs. */
  readonly name: string;
  readConfig(m: MetadataReader): C;
  load(w: WeightLoader, c: C, at: LoadContext): ModelParts;
}
