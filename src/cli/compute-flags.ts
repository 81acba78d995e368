// The flags that choose where and how a model computes (`run`, `chat`; serve takes --threads and --sum-order).
import { MAX_THREADS } from '../backend/native/native-env.js';
import { SUM_ORDERS, type SumOrder } from '../backend/index.js';
import type { BackendKind } from '../model/load.js';
import { choiceOption, intOption } from './cli-error.js';
import { choiceHelp } from './engine-defaults.js';

export const COMPUTE_OPTIONS = {
  backend: { type: 'string' },
  threads: { type: 'string' },
  'sum-order': { type: 'string' },
} as const;

export const COMPUTE_HELP = `      --backend KIND         ${choiceHelp('backend')} (reference: plain TypeScript, slow)
      --threads N            compute threads (native backend; default: physical cores)
      --sum-order ORDER      how prefill matmuls add up: ${choiceHelp('sumOrder')}
                             (llama.cpp: its results to the bit, prefill matmuls 2-3x slower)`;

export function threadsOption(value: string | undefined): number | undefined {
  return value === undefined ? undefined : intOption('threads', value, 0, 1, MAX_THREADS);
}

export function sumOrderOption(value: string | undefined): SumOrder | undefined {
  return choiceOption<SumOrder>('sum-order', value, SUM_ORDERS);
}

export function computeOptions(v: { backend?: string; threads?: string; 'sum-order'?: string }): { backend?: BackendKind; threads?: number; sumOrder?: SumOrder } {
  return { backend: choiceOption<BackendKind>('backend', v.backend, ['native', 'reference']), threads: threadsOption(v.threads), sumOrder: sumOrderOption(v['sum-order']) };
}
