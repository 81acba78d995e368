// Choosing a backend by name. The native backend is the default for running models; the reference
// backend is the plain-TypeScript oracle used by tests.
import type { Backend } from './backend.js';
import { NativeBackend } from './native/native-backend.js';
import { ReferenceBackend } from './reference/reference-backend.js';

export type BackendKind = 'native' | 'reference';

export interface BackendOptions {
  /** Compute threads (native backend; default: one per physical core). */
  threads?: number;
  /** Kernel instruction set (native backend; default: the best the CPU supports). */
  isa?: string;
}

export function createBackend(kind: BackendKind = 'native', opts: BackendOptions = {}): Backend {
  if (kind === 'reference') return new ReferenceBackend();
  return new NativeBackend(opts);
}
