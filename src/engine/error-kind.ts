// Engine errors cross the worker with a kind: 'request' when the request is at fault (the client gets
// a 4xx), 'internal' when the model or the engine is (a 5xx). The server maps the kind, not the name.
export type ErrorKind = 'request' | 'internal';

/** What an engine error carries across the worker. */
export interface ErrorDescription {
  name: string;
  message: string;
  kind?: ErrorKind;
  code?: string;
  /** The request field at fault, in the HTTP API's snake_case ('prompt' stands for the prompt or messages). */
  param?: string;
  /** Where it was thrown, on the worker: the error rebuilt on the main thread keeps it for whoever debugs. */
  stack?: string;
}

/** The code of the error every request gets once the engine has stopped (a 503, not the request's fault). */
export const ENGINE_CLOSED = 'engine_closed';

/** Every request, and every call, once the engine has stopped. */
export class EngineClosedError extends Error {
  override name = 'EngineClosedError';
  readonly kind = 'internal' as const;
  readonly code = ENGINE_CLOSED;
}

/** An error the request caused: the client gets a 400 with this code, naming `param`. */
export class RequestFaultError extends RangeError {
  readonly kind = 'request' as const;
  constructor(message: string, readonly code = 'invalid_value', readonly param?: string) {
    super(message);
    this.name = 'RequestFaultError';
  }
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
  const { kind, code, param } = e as { kind?: unknown; code?: unknown; param?: unknown };
  return {
    name: e.name,
    message: e.message,
    ...(kind === 'request' || kind === 'internal' ? { kind } : {}),
    ...(typeof code === 'string' ? { code } : {}),
    ...(typeof param === 'string' ? { param } : {}),
    ...(typeof e.stack === 'string' ? { stack: e.stack } : {}),
  };
}
