// One generation request, from validated input to the HTTP response: starts the engine request, waits
// for its first delta (so bad input still gets a 4xx status), then answers with one JSON object or an
// SSE stream. A client that goes away aborts the engine request, which frees its KV slot; so does the
// end of the drain's grace period, which the client learns as an error (a 503, or an SSE error frame).
import type { FastifyReply } from 'fastify';
import type { EngineDelta, EngineInput, RequestParams, Usage } from '../engine/engine-types.js';
import type { ServingEngine } from './engine-like.js';
import { endedByShutdown, fromEngineError, type ApiError } from './errors.js';
import type { ServerMetrics } from './metrics.js';
import {
  chatChunk, chatLogprobs, chatResponse, completionChunk, completionLogprobs, completionResponse, newHead, totalUsage, usageChunk,
  type Endpoint, type ResponseHead, type TokenTexts,
} from './openai-format.js';
import { SseWriter } from './sse.js';
import type { ToolCallMode } from './tool-calls.js';
import { readToolReply } from './tool-reply.js';
import { TriggerHoldback } from './trigger-holdback.js';

export interface GenerationJob {
  endpoint: Endpoint;
  input: EngineInput;
  params: RequestParams;
  stream: boolean;
  includeUsage: boolean;
  /** The model name the response reports. */
  model: string;
  /** Engine field names -> the request's own, for errors ({ prompt: 'messages' } on chat). */
  fieldNames?: Record<string, string>;
  /**
   * Chat with tools: each choice's text is read as calls, returned as message.tool_calls ('forced': the
   * text is one call; a convention: the text may hold calls in it).
   */
  toolCalls?: ToolCallMode;
}

export interface GenerationContext {
  engine: ServingEngine;
  metrics: ServerMetrics;
  texts: TokenTexts;
  /** Aborted when the drain's grace period is over: requests still running end with an error. */
  shutdown?: AbortSignal;
  drainTimeoutMs?: number;
  /** Called when a request's first delta arrives: it is running in a slot now (the live KV map looks). */
  started?: () => void;
}

/** Why a response ended early, if it did. */
interface Cut {
  clientGone: boolean;
  shutdown: boolean;
}

/** Observes TTFT and the gaps between tokens as deltas arrive. */
class TokenClock {
  private last: number | undefined;
  constructor(private readonly arrival: number, private readonly metrics: ServerMetrics) {}

  observe(d: EngineDelta): void {
    if (d.tokens.length === 0) return;
    const now = performance.now();
    if (this.last === undefined) this.metrics.firstToken((now - this.arrival) / 1000);
    else for (let i = 0; i < d.tokens.length; i++) this.metrics.tokenGap((now - this.last) / 1000 / d.tokens.length);
    this.last = now;
  }

  finish(): void {
    this.metrics.endToEnd((performance.now() - this.arrival) / 1000);
  }
}

export async function serveGeneration(ctx: GenerationContext, job: GenerationJob, reply: FastifyReply): Promise<void> {
  const clock = new TokenClock(performance.now(), ctx.metrics);
  const head = newHead(job.endpoint, job.model);
  const toApiError: EngineFailure = (e) => {
    const err = fromEngineError(e, job.fieldNames ?? {}, head.id);
    // The client's fault is in its 4xx; ours goes to the log, under the id the client was given.
    if (err.status >= 500) console.error(`vserve: request ${head.id} failed: ${e instanceof Error ? `${e.name}: ${e.message}` : String(e)}`);
    return err;
  };
  const controller = new AbortController();
  const res = reply.raw;
  const cut: Cut = { clientGone: false, shutdown: false };
  // 'close' also fires after a normal end; only an unfinished response means the client left.
  const onClose = () => {
    if (!res.writableFinished) {
      cut.clientGone = true;
      controller.abort();
    }
  };
  const onShutdown = () => {
    cut.shutdown = true;
    controller.abort();
  };
  res.on('close', onClose);
  ctx.shutdown?.addEventListener('abort', onShutdown, { once: true });
  try {
    const stream = ctx.engine.generate(job.input, job.params, { signal: controller.signal });
    let first: IteratorResult<EngineDelta>;
    try {
      first = await stream.next();
    } catch (e) {
      throw toApiError(e);
    }
    ctx.started?.();
    if (cut.clientGone) {
      ctx.metrics.failed('client_disconnected');
      reply.hijack();
      return;
    }
    if (job.stream) await streamResponse(ctx, job, head, first, stream, reply, clock, cut, toApiError);
    else await wholeResponse(ctx, job, head, first, stream, reply, clock, cut, toApiError);
  } finally {
    res.off('close', onClose);
    ctx.shutdown?.removeEventListener('abort', onShutdown);
  }
}

type Deltas = AsyncIterator<EngineDelta>;
/** An engine error as the client gets it (logged when it is ours). */
type EngineFailure = (e: unknown) => ApiError;

/** What each choice of a request has produced so far. */
class Choices {
  readonly texts: string[];
  readonly logprobs: NonNullable<EngineDelta['logprobs']>[];
  readonly finals: (EngineDelta | undefined)[];

  constructor(n: number) {
    this.texts = new Array(n).fill('');
    this.logprobs = Array.from({ length: n }, () => []);
    this.finals = new Array(n).fill(undefined);
  }

  add(d: EngineDelta): number {
    const i = d.index ?? 0;
    this.texts[i] += d.text;
    if (d.logprobs) this.logprobs[i]!.push(...d.logprobs);
    if (d.finish_reason) this.finals[i] = d;
    return i;
  }

  get usage(): Usage {
    return totalUsage(this.finals.map((f) => f?.usage));
  }

  /** The request's finish reason for the metrics: that of its first choice. */
  get finishReason(): string {
    return this.finals[0]?.finish_reason ?? 'stop';
  }
}

async function wholeResponse(
  ctx: GenerationContext, job: GenerationJob, head: ResponseHead, first: IteratorResult<EngineDelta>, stream: Deltas,
  reply: FastifyReply, clock: TokenClock, cut: Cut, toApiError: EngineFailure,
): Promise<void> {
  const choices = new Choices(job.params.n ?? 1);
  try {
    for (let r = first; !r.done; r = await stream.next()) {
      clock.observe(r.value);
      choices.add(r.value);
    }
  } catch (e) {
    throw toApiError(e);
  }
  if (cut.shutdown) throw endedByShutdown(ctx.drainTimeoutMs ?? 0);
  if (cut.clientGone) {
    ctx.metrics.failed('client_disconnected');
    reply.hijack();
    return;
  }
  const usage = choices.usage;
  clock.finish();
  ctx.metrics.finished(choices.finishReason, usage.prompt_tokens, usage.completion_tokens);
  const wanted = job.params.logprobs === true;
  const chat = job.endpoint === 'chat';
  const out = choices.texts.map((text, i) => {
    const lp = choices.logprobs[i]!;
    const logprobs = !wanted ? null : chat ? chatLogprobs(ctx.texts, lp) : completionLogprobs(ctx.texts, lp, 0);
    return { text, logprobs, finish: choices.finals[i]?.finish_reason, toolReply: job.toolCalls ? readToolReply(job.toolCalls, text) : undefined };
  });
  await reply.code(200).send(chat ? chatResponse(head, out, usage) : completionResponse(head, out, usage));
}

async function streamResponse(
  ctx: GenerationContext, job: GenerationJob, head: ResponseHead, first: IteratorResult<EngineDelta>, stream: Deltas,
  reply: FastifyReply, clock: TokenClock, cut: Cut, toApiError: EngineFailure,
): Promise<void> {
  reply.hijack();
  const sse = new SseWriter(reply.raw);
  sse.open();
  const chat = job.endpoint === 'chat';
  const wanted = job.params.logprobs === true;
  const choices = new Choices(job.params.n ?? 1);
  const logprobChars = choices.texts.map(() => 0);
  // Calls in the model's convention: text streams until a call opens; its logprobs wait with it.
  const trigger = job.toolCalls !== 'forced' ? job.params.triggeredFormat : undefined;
  const holdbacks = trigger ? choices.texts.map(() => new TriggerHoldback(trigger.trigger, trigger.gap)) : undefined;
  const heldLogprobs: NonNullable<EngineDelta['logprobs']>[] = choices.texts.map(() => []);
  /** The content each choice has streamed, which the reply's content begins with once read. */
  const sent = choices.texts.map(() => '');
  const sendContent = (i: number, text: string) => {
    sent[i] += text;
    const lp = heldLogprobs[i]!.splice(0);
    if (text || lp.length > 0) sse.data(chatChunk(head, i, { content: text }, wanted && lp.length > 0 ? chatLogprobs(ctx.texts, lp) : null, undefined, job.includeUsage));
  };
  if (chat) choices.texts.forEach((_, i) => sse.data(chatChunk(head, i, { role: 'assistant', content: '' }, null, undefined, job.includeUsage)));
  try {
    for (let r = first; !r.done; r = await stream.next()) {
      const d = r.value;
      clock.observe(d);
      const i = choices.add(d);
      if (!d.text && !d.logprobs?.length) continue;
      if (holdbacks) {
        const holdback = holdbacks[i]!;
        const out = holdback.push(d.text);
        if (!holdback.triggered && d.logprobs) heldLogprobs[i]!.push(...d.logprobs);
        if (out) sendContent(i, out);
        if (holdback.triggered) heldLogprobs[i] = [];
      } else if (job.toolCalls) {
        // The call goes out whole once complete: its arguments are only known valid at the end.
        continue;
      } else if (chat) {
        sse.data(chatChunk(head, i, { content: d.text }, wanted && d.logprobs ? chatLogprobs(ctx.texts, d.logprobs) : null, undefined, job.includeUsage));
      } else {
        // A token's logprob can arrive after its text (held back while it might begin a stop string), so offsets count logprob tokens.
        const lp = wanted && d.logprobs ? completionLogprobs(ctx.texts, d.logprobs, logprobChars[i]!) : null;
        if (lp) logprobChars[i] = lp.tokens.reduce((at, t) => at + t.length, logprobChars[i]!);
        sse.data(completionChunk(head, i, d.text, lp, undefined, job.includeUsage));
      }
    }
  } catch (e) {
    // Headers are gone: the error travels as a data frame, as OpenAI's own streams do.
    const err = toApiError(e);
    ctx.metrics.failed(err.status >= 500 ? 'server_error' : 'invalid_request');
    sse.data(err.body());
    sse.done();
    return;
  }
  if (cut.shutdown) {
    ctx.metrics.failed('shutdown');
    sse.data(endedByShutdown(ctx.drainTimeoutMs ?? 0).body());
    sse.done();
    return;
  }
  if (cut.clientGone) {
    ctx.metrics.failed('client_disconnected');
    sse.end();
    return;
  }
  const usage = choices.usage;
  clock.finish();
  ctx.metrics.finished(choices.finishReason, usage.prompt_tokens, usage.completion_tokens);
  choices.finals.forEach((f, i) => {
    const reason = f?.finish_reason;
    const text = choices.texts[i]!;
    const calls = job.toolCalls ? readToolReply(job.toolCalls, text) : undefined;
    const holdback = holdbacks?.[i];
    if (calls) {
      // Content streamed so far is the text before the first call; any text after it goes now.
      const content = calls.content ?? '';
      const later = content.startsWith(sent[i]!) ? content.slice(sent[i]!.length) : content;
      if (later) sse.data(chatChunk(head, i, { content: later }, null, undefined, job.includeUsage));
      calls.calls.forEach((call, index) => sse.data(chatChunk(head, i, { tool_calls: [{ index, ...call }] }, null, undefined, job.includeUsage)));
      sse.data(chatChunk(head, i, {}, null, 'tool_calls', job.includeUsage));
    } else if (holdback) {
      // No whole call after all: what was held back is text.
      sendContent(i, text.slice(sent[i]!.length));
      sse.data(chatChunk(head, i, {}, null, reason, job.includeUsage));
    } else if (job.toolCalls) {
      sse.data(chatChunk(head, i, { content: choices.texts[i]! }, null, undefined, job.includeUsage));
      sse.data(chatChunk(head, i, {}, null, reason, job.includeUsage));
    } else {
      sse.data(chat ? chatChunk(head, i, {}, null, reason, job.includeUsage) : completionChunk(head, i, '', null, reason, job.includeUsage));
    }
  });
  if (job.includeUsage) sse.data(usageChunk(head, job.endpoint, usage));
  sse.done();
}
