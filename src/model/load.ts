// One call from a GGUF path to everything needed to generate: the model on a backend, and its tokenizer.
import { createBackend, type BackendKind } from '../backend/index.js';
import { GGUFFile } from './gguf/reader.js';
import { TransformerModel } from './transformer.js';
import { createTokenizer } from './tokenizer/index.js';
import type { Tokenizer } from './tokenizer/tokenizer.js';

export type { BackendKind };

export interface LoadOptions {
  /** 'native' (default): the C++ kernels; 'reference': plain TypeScript, for tests. */
  backend?: BackendKind;
  /** Compute threads for the native backend (default: one per physical core). */
  threads?: number;
  /** The tokens one sequence may hold, or a function of the training context (default: the training context). */
  contextSize?: number | ((trained: number) => number);
}

export interface LoadedModel {
  model: TransformerModel;
  tokenizer: Tokenizer;
}

export function loadModel(path: string, opts: LoadOptions = {}): LoadedModel {
  const file = GGUFFile.open(path);
  try {
    const tokenizer = createTokenizer(file);
    const backend = createBackend(opts.backend ?? 'native', { threads: opts.threads });
    return { model: TransformerModel.load(file, backend, { contextSize: opts.contextSize }), tokenizer };
  } catch (e) {
    file.close();
    throw e;
  }
}
