// One call from a GGUF path to everything needed to generate: the model on a backend, and its tokenizer.
import { createBackend, type BackendKind, type SumOrder } from '../backend/index.js';
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
  /** How the native backend's prefill matmuls add up (default 'fast'; SUM_ORDERS). */
  sumOrder?: SumOrder;
  /** Progress of readying the weights for the kernels (bytes done, total). */
  onProgress?: (done: number, total: number) => void;
  /** The tokens one sequence may hold, or a function of the training context (default: the training context). */
  contextSize?: number | ((trained: number) => number);
}

export interface LoadedModel {
  model: TransformerModel;
  tokenizer: Tokenizer;
  /** Milliseconds the load took, weight repacking included. */
  loadMs: number;
}

export function loadModel(path: string, opts: LoadOptions = {}): LoadedModel {
  const start = performance.now();
  const file = GGUFFile.open(path);
  try {
    const tokenizer = createTokenizer(file);
    const backend = createBackend(opts.backend ?? 'native', { threads: opts.threads, sumOrder: opts.sumOrder });
    const model = TransformerModel.load(file, backend, { contextSize: opts.contextSize, onProgress: opts.onProgress });
    return { model, tokenizer, loadMs: performance.now() - start };
  } catch (e) {
    file.close();
    throw e;
  }
}
