// OpenAI's response objects, built from the engine's deltas: completions and chat completions, whole
// or as stream chunks, with logprobs in each endpoint's own shape.
import { randomUUID } from 'node:crypto';
import type { EngineDelta, EngineFinishReason, Usage } from '../engine/engine-types.js';
import type { ToolCall, ToolReply } from './tool-calls.js';

/** Token id -> its text and UTF-8 bytes (logprobs name tokens by text). */
export interface TokenTexts {
  piece(id: number): Uint8Array;
}

type DeltaLogprobs = NonNullable<EngineDelta['logprobs']>;

export type Endpoint = 'completion' | 'chat';

/** The fields every response and chunk of one request shares. */
export interface ResponseHead {
  id: string;
  created: number;
  model: string;
}

export function newHead(endpoint: Endpoint, model: string): ResponseHead {
  const prefix = endpoint === 'chat' ? 'chatcmpl-' : 'cmpl-';
  return { id: prefix + randomUUID().replaceAll('-', ''), created: Math.floor(Date.now() / 1000), model };
}

/** 'abort' only reaches a client when the server stops mid-request; OpenAI has no such value. */
export function finishReason(r: EngineFinishReason | 'tool_calls' | undefined): 'stop' | 'length' | 'tool_calls' | null {
  if (r === undefined) return null;
  if (r === 'tool_calls') return r;
  return r === 'length' ? 'length' : 'stop';
}

const utf8 = new TextDecoder('utf-8');

function tokenText(texts: TokenTexts, id: number): { text: string; bytes: number[] } {
  const bytes = texts.piece(id);
  // SentencePiece marks spaces with U+2581 in the vocabulary; the piece bytes already hold plain spaces.
  return { text: utf8.decode(bytes), bytes: Array.from(bytes) };
}

/** The chat API's logprobs: one entry per token with its alternatives. */
export function chatLogprobs(texts: TokenTexts, entries: DeltaLogprobs) {
  return {
    content: entries.map((e) => {
      const t = tokenText(texts, e.token);
      return {
        token: t.text,
        logprob: e.logprob,
        bytes: t.bytes,
        top_logprobs: e.top.map((alt) => {
          const a = tokenText(texts, alt.token);
          return { token: a.text, logprob: alt.logprob, bytes: a.bytes };
        }),
      };
    }),
    refusal: null,
  };
}

/** The legacy completions API's logprobs: parallel arrays; `offset` is where this text starts in the output. */
export function completionLogprobs(texts: TokenTexts, entries: DeltaLogprobs, offset: number) {
  const tokens: string[] = [];
  const textOffset: number[] = [];
  let at = offset;
  for (const e of entries) {
    const t = tokenText(texts, e.token).text;
    tokens.push(t);
    textOffset.push(at);
    at += t.length;
  }
  return {
    tokens,
    token_logprobs: entries.map((e) => e.logprob),
    top_logprobs: entries.map((e) => Object.fromEntries(e.top.map((alt) => [tokenText(texts, alt.token).text, alt.logprob]))),
    text_offset: textOffset,
  };
}

/** id, object, created, model: the head of every response and chunk. */
function envelope(head: ResponseHead, object: string) {
  return { id: head.id, object, created: head.created, model: head.model, system_fingerprint: null };
}

/** Chunks carry `usage: null` when the stream will end with a usage chunk, as OpenAI's do. */
const pendingUsage = (includeUsage: boolean) => (includeUsage ? { usage: null } : {});

/** One finished choice of a whole (not streamed) response. */
export interface ChoiceOut {
  text: string;
  logprobs: unknown;
  finish: EngineFinishReason | undefined;
  /** The reply read as tool calls (chat with tools), when it holds any. */
  toolReply?: ToolReply;
}

export function completionResponse(head: ResponseHead, choices: readonly ChoiceOut[], usage: Usage) {
  return {
    ...envelope(head, 'text_completion'),
    choices: choices.map((c, index) => ({ index, text: c.text, logprobs: c.logprobs ?? null, finish_reason: finishReason(c.finish) })),
    usage,
  };
}

export function completionChunk(head: ResponseHead, index: number, text: string, logprobs: unknown, finish: EngineFinishReason | undefined, includeUsage: boolean) {
  return {
    ...envelope(head, 'text_completion'),
    choices: [{ index, text, logprobs: logprobs ?? null, finish_reason: finishReason(finish) }],
    ...pendingUsage(includeUsage),
  };
}

export function chatResponse(head: ResponseHead, choices: readonly ChoiceOut[], usage: Usage) {
  return {
    ...envelope(head, 'chat.completion'),
    choices: choices.map((c, index) => ({
      index,
      message: c.toolReply ? { role: 'assistant', content: c.toolReply.content, refusal: null, tool_calls: c.toolReply.calls } : { role: 'assistant', content: c.text, refusal: null },
      logprobs: c.logprobs ?? null,
      finish_reason: finishReason(c.toolReply ? 'tool_calls' : c.finish),
    })),
    usage,
  };
}

/** A chat stream chunk; the first one of each choice carries the role. */
export function chatChunk(
  head: ResponseHead,
  index: number,
  delta: { role?: 'assistant'; content?: string; tool_calls?: ({ index: number } & ToolCall)[] },
  logprobs: unknown,
  finish: EngineFinishReason | 'tool_calls' | undefined,
  includeUsage: boolean,
) {
  return {
    ...envelope(head, 'chat.completion.chunk'),
    choices: [{ index, delta, logprobs: logprobs ?? null, finish_reason: finishReason(finish) }],
    ...pendingUsage(includeUsage),
  };
}

/**
 * Usage as OpenAI reports it. completion_tokens_details is all zeros: the model has no reasoning tokens
 * and vserve no predicted outputs, but clients read the object.
 */
export interface ApiUsage extends Usage {
  completion_tokens_details: { reasoning_tokens: number; accepted_prediction_tokens: number; rejected_prediction_tokens: number };
}

/** A request's usage from its choices' final deltas: the prompt once, the completions added up. */
export function totalUsage(finals: readonly (Usage | undefined)[]): ApiUsage {
  const known = finals.filter((u) => u !== undefined);
  const prompt = known[0]?.prompt_tokens ?? 0;
  const completion = known.reduce((n, u) => n + u.completion_tokens, 0);
  return {
    prompt_tokens: prompt,
    completion_tokens: completion,
    total_tokens: prompt + completion,
    prompt_tokens_details: { cached_tokens: known[0]?.prompt_tokens_details.cached_tokens ?? 0 },
    completion_tokens_details: { reasoning_tokens: 0, accepted_prediction_tokens: 0, rejected_prediction_tokens: 0 },
    ...(eviction(known) ? { kv_eviction: eviction(known) } : {}),
  };
}

/** vserve's kv_eviction usage field: the policy and budget, and the tokens evicted over all choices. */
function eviction(known: readonly Usage[]): Usage['kv_eviction'] {
  const first = known[0]?.kv_eviction;
  return first && { ...first, evicted_tokens: known.reduce((n, u) => n + (u.kv_eviction?.evicted_tokens ?? 0), 0) };
}

/** The extra last chunk of stream_options.include_usage: no choices, the usage. */
export function usageChunk(head: ResponseHead, endpoint: Endpoint, usage: Usage) {
  return { ...envelope(head, endpoint === 'chat' ? 'chat.completion.chunk' : 'text_completion'), choices: [], usage };
}
