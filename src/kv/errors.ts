// Errors of the KV-cache managers. The native VirtualKV throws plain Errors with the same `code` values,
// so callers can handle every manager's failures the same way.

export type KVErrorCode =
  | 'ERR_KV_INVALID_ARGUMENT'
  | 'ERR_KV_UNKNOWN_SLOT'
  | 'ERR_KV_DOUBLE_FREE'
  | 'ERR_KV_CONTEXT_OVERFLOW'
  | 'ERR_KV_MAX_MAP_COUNT'
  | 'ERR_KV_ADDRESS_SPACE'
  | 'ERR_KV_POOL_IN_USE'
  | 'ERR_KV_SYSTEM'
  | 'ERR_KV_CLOSED'
  | 'ERR_KV_NATIVE_MISSING';

export class KVError extends Error {
  constructor(
    readonly code: KVErrorCode,
    message: string,
  ) {
    super(message);
    this.name = 'KVError';
  }
}

/** True for an error thrown by any KV manager (TS or native) with the given code. */
export function isKVError(error: unknown, code?: KVErrorCode): error is Error & { code: KVErrorCode } {
  if (!(error instanceof Error)) return false;
  const actual = (error as { code?: unknown }).code;
  return typeof actual === 'string' && actual.startsWith('ERR_KV_') && (code === undefined || actual === code);
}
