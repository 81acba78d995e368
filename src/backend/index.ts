// Choosing a backend by name. The native backend is the default for running models; the reference
// backend is the plain-TypeScript oracle used by tests.
import type { Backend } from './backend.js';
import { ReferenceBackend } from './reference/reference-backend.js';

export type BackendKind = 'native' | 'reference';

export interface BackendOptions {
  /** Compute threads (native backend; default: one per physical core). */
  threads?: number;
}

export function createBackend(kind: BackendKind, opts: BackendOptions = {}): Backend {
  void opts;
  if (kind === 'reference') return new ReferenceBackend();
  // TODO(native core): replaced by the NativeBackend once the addon's binding lands.
  return new ReferenceBackend();
}
