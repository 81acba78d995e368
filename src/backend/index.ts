// Choosing a backend by name. The native backend is the default for running models; the reference
// backend is the plain-TypeScript oracle used by tests.
import type { Backend } from './backend.js';
import { NativeBackend } from './native/native-backend.js';
import { ReferenceBackend } from './reference/reference-backend.js';

export type BackendKind = 'native' | 'reference';

/**
 * How prefill matmuls add up (native backend): 'fast', one sum per block, or 'llama.cpp', the partial sums
 * llama.cpp keeps, for its results to the bit with prefill matmuls 2-3x slower (on AVX-512, the weight
 * types llama.cpp does not repack). Decode steps sum as llama.cpp does either way.
 */
export const SUM_ORDERS = ['fast', 'llama.cpp'] as const;
export type SumOrder = (typeof SUM_ORDERS)[number];

export interface BackendOptions {
  /** Compute threads (native backend; default: one per physical core). */
  threads?: number;
  /** Kernel instruction set (native backend; default: the best the CPU supports). */
  isa?: string;
  /** How prefill matmuls add up (native backend; default 'fast'). A process-wide setting, like isa. */
  sumOrder?: SumOrder;
}

export function createBackend(kind: BackendKind = 'native', opts: BackendOptions = {}): Backend {
  if (kind === 'reference') return new ReferenceBackend();
  return new NativeBackend(opts);
}
