// The flags that choose where a model computes (`run`, `chat`; serve takes --threads only).
import { MAX_THREADS } from '../backend/native/native-env.js';
import type { BackendKind } from '../model/load.js';
import { choiceOption, intOption } from './cli-error.js';
import { choiceHelp } from './engine-defaults.js';

export const COMPUTE_OPTIONS = {
  backend: { type: 'string' },
  threads: { type: 'string' },
} as const;

export const COMPUTE_HELP = `      --backend KIND         ${choiceHelp('backend')} (reference: plain TypeScript, slow)
      --threads N            compute threads (native backend; default: physical cores)`;

export function threadsOption(value: string | undefined): number | undefined {
  return value === undefined ? undefined : intOption('threads', value, 0, 1, MAX_THREADS);
}

export function computeOptions(v: { backend?: string; threads?: string }): { backend?: BackendKind; threads?: number } {
  return { backend: choiceOption<BackendKind>('backend', v.backend, ['native', 'reference']), threads: threadsOption(v.threads) };
}
