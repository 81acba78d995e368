// Engine errors cross the worker with a kind: 'request' when the request is at fault (the client gets
// a 4xx), 'internal' when the model or the engine is (a 5xx). The server maps the kind, not the name.
export type ErrorKind = 'request' | 'internal';

/** What an engine error carries across the worker. */
export interface ErrorDescription {
  name: string;
  message: string;
  kind?: ErrorKind;
  code?: string;
}

/** An error that is not the request's fault, with a code the server reports. */
export class InternalEngineError extends Error {
  readonly kind = 'internal' as const;
  constructor(readonly code: string, message: string) {
    super(message);
    this.name = 'InternalEngineError';
  }
}

export function describeError(e: unknown): ErrorDescription {
  if (!(e instanceof Error)) return { name: 'Error', message: String(e) };
  const { kind, code } = e as { kind?: unknown; code?: unknown };
  return {
    name: e.name,
    message: e.message,
    ...(kind === 'request' || kind === 'internal' ? { kind } : {}),
    ...(typeof code === 'string' ? { code } : {}),
  };
}
