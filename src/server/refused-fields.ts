// OpenAI request fields vserve does not implement. Each is refused with a 400 that names it rather
// than accepted and ignored, so a client never believes it got a behaviour it did not. A value that
// asks for exactly what vserve does anyway (store: false, modalities: ["text"]) is accepted.
import { ApiError } from './errors.js';
import type { Endpoint } from './openai-format.js';

interface Refusal {
  /** Why it is refused, completing "'field' is not supported: ...". */
  why: string;
  /** Values that mean vserve's own behaviour; null is always accepted (clients send it for "unset"). */
  accepts?: (v: unknown) => boolean;
}

const BOTH: Record<string, Refusal> = {
  functions: { why: 'function calling is not implemented' },
  function_call: { why: 'function calling is not implemented', accepts: (v) => v === 'none' },
  service_tier: { why: 'vserve has one service tier', accepts: (v) => v === 'auto' || v === 'default' },
  store: { why: 'vserve does not store completions; only false is accepted', accepts: (v) => v === false },
  metadata: { why: 'vserve does not store completions, so there is nothing to tag' },
};

const CHAT_ONLY: Record<string, Refusal> = {
  audio: { why: 'audio output is not implemented' },
  modalities: { why: 'only text output is implemented; only ["text"] is accepted', accepts: (v) => Array.isArray(v) && v.length === 1 && v[0] === 'text' },
  prediction: { why: 'predicted outputs are not implemented' },
  reasoning_effort: { why: 'the served model has no reasoning mode' },
  web_search_options: { why: 'vserve does not search the web' },
};

const COMPLETION_ONLY: Record<string, Refusal> = {
  tools: { why: 'tool calls are a chat API feature (see /v1/chat/completions)', accepts: (v) => Array.isArray(v) && v.length === 0 },
  tool_choice: { why: 'tool calls are a chat API feature (see /v1/chat/completions)', accepts: (v) => v === 'none' },
  parallel_tool_calls: { why: 'tool calls are a chat API feature (see /v1/chat/completions)' },
  best_of: { why: 'only best_of 1 is implemented (use n for several choices)', accepts: (v) => v === 1 },
  suffix: { why: 'insertion (fill in the middle) is not implemented' },
};

/** Throws a 400 naming the first field of `body` vserve refuses; the body's own validation comes after. */
export function refuseUnimplemented(endpoint: Endpoint, body: unknown): void {
  if (typeof body !== 'object' || body === null || Array.isArray(body)) return;
  const table = { ...BOTH, ...(endpoint === 'chat' ? CHAT_ONLY : COMPLETION_ONLY) };
  for (const [field, value] of Object.entries(body)) {
    const r = table[field];
    if (!r || value === null || value === undefined || r.accepts?.(value)) continue;
    throw new ApiError(400, `'${field}' is not supported: ${r.why}.`, 'invalid_request_error', field, 'unsupported_parameter');
  }
}

/** Every field the table knows for an endpoint (the strict schemas let them through to be judged here). */
export function refusableFields(endpoint: Endpoint): string[] {
  return Object.keys({ ...BOTH, ...(endpoint === 'chat' ? CHAT_ONLY : COMPLETION_ONLY) });
}
