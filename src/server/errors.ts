// Errors as OpenAI's API returns them: `{ error: { message, type, param, code } }` with the matching
// HTTP status. Whatever a client sends ends here as a 4xx; only our own bugs are 500s.
import { ENGINE_CLOSED } from '../engine/error-kind.js';

export interface OpenAIErrorBody {
  error: { message: string; type: string; param: string | null; code: string | null };
}

export class ApiError extends Error {
  constructor(
    readonly status: number,
    message: string,
    readonly type = 'invalid_request_error',
    readonly param: string | null = null,
    readonly code: string | null = null,
    /** Extra response headers, e.g. Retry-After. */
    readonly headers: Record<string, string> = {},
  ) {
    super(message);
    this.name = 'ApiError';
  }

  body(): OpenAIErrorBody {
    return { error: { message: this.message, type: this.type, param: this.param, code: this.code } };
  }
}

export const invalidField = (param: string | null, message: string, code: string | null = 'invalid_value') =>
  new ApiError(400, message, 'invalid_request_error', param, code);

export const unauthorized = () =>
  new ApiError(401, 'Incorrect or missing API key: send it as "Authorization: Bearer KEY".', 'invalid_request_error', null, 'invalid_api_key');

export const modelNotFound = (model: string, served: string) =>
  new ApiError(404, `The model "${model}" does not exist; this server serves "${served}".`, 'invalid_request_error', 'model', 'model_not_found');

export const routeNotFound = (method: string, url: string) =>
  new ApiError(404, `Unknown route: ${method} ${url.split('?')[0]}`, 'invalid_request_error', null, 'not_found');

export const methodNotAllowed = (method: string, url: string, allow: readonly string[]) =>
  new ApiError(405, `Method ${method} is not allowed on ${url.split('?')[0]}; use ${allow.join(' or ')}.`, 'invalid_request_error', null, 'method_not_allowed', {
    allow: allow.join(', '),
  });

export const queueFull = (retryAfterS: number) =>
  new ApiError(429, 'The server is at capacity (too many requests in flight); retry later.', 'rate_limit_error', null, 'rate_limit_exceeded', {
    'retry-after': String(retryAfterS),
  });

export const shuttingDown = () =>
  new ApiError(503, 'The server is shutting down.', 'server_error', null, 'service_unavailable', { 'retry-after': '5', connection: 'close' });

export const requestTimeout = (ms: number) =>
  new ApiError(408, `The request body did not arrive within ${ms / 1000} s.`, 'invalid_request_error', null, 'request_timeout', { connection: 'close' });

export const unsupportedMediaType = (contentType: string) =>
  new ApiError(415, `Content-Type "${contentType}" is not supported: send the body as JSON with "Content-Type: application/json".`, 'invalid_request_error', null, 'unsupported_media_type');

/** A request still running when the drain's grace period ended. */
export const endedByShutdown = (graceMs: number) =>
  new ApiError(503, `The server shut down before this request finished (it waited ${graceMs / 1000} s for requests in flight).`, 'server_error', null, 'server_shutdown', { connection: 'close' });

/**
 * Maps an error thrown by an engine request stream by its kind and code (DESIGN §8.7), never its class
 * name or message: a 'request' fault is a 400 naming its field, anything else is ours (a 5xx).
 * `fieldNames` renames the engine's field to the one this request used ('prompt' is 'messages' on
 * chat); `requestId` is named in a 500 so the client can quote it.
 */
export function fromEngineError(e: unknown, fieldNames: Readonly<Record<string, string>>, requestId: string): ApiError {
  if (e instanceof ApiError) return e;
  const err = e instanceof Error ? e : new Error(String(e));
  const { kind, code, param } = err as { kind?: string; code?: string; param?: string };
  if (kind === 'request') return invalidField(param === undefined ? null : (fieldNames[param] ?? param), err.message, code ?? 'invalid_value');
  if (code === ENGINE_CLOSED) return new ApiError(503, 'The engine has stopped.', 'server_error', null, 'service_unavailable', { 'retry-after': '5' });
  const detail = kind === 'internal' ? `: ${err.message}.` : '.';
  return new ApiError(500, `Internal server error in request ${requestId}${detail}`, 'server_error', null, code ?? 'internal_error');
}
