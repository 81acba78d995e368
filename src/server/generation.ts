// One generation request, from validated input to the HTTP response: starts the engine request, waits
// for its first delta (so bad input still gets a 4xx status), then answers with one JSON object or an
// SSE stream. A client that goes away aborts the engine request, which frees its KV slot.
import type { FastifyReply } from 'fastify';
import { emptyUsage, type EngineDelta, type EngineInput, type RequestParams, type Usage } from '../engine/engine-types.js';
import type { ServingEngine } from './engine-like.js';
import { fromEngineError } from './errors.js';
import type { ServerMetrics } from './metrics.js';
import {
  chatChunk, chatLogprobs, chatResponse, completionChunk, completionLogprobs, completionResponse, newHead, usageChunk,
  type Endpoint, type ResponseHead, type TokenTexts,
} from './openai-format.js';
import { SseWriter } from './sse.js';

export interface GenerationJob {
  endpoint: Endpoint;
  input: EngineInput;
  params: RequestParams;
  stream: boolean;
  includeUsage: boolean;
  /** The model name the response reports. */
  model: string;
}

export interface GenerationContext {
  engine: ServingEngine;
  metrics: ServerMetrics;
  texts: TokenTexts;
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
  const promptField = job.endpoint === 'chat' ? 'messages' : 'prompt';
  const controller = new AbortController();
  const res = reply.raw;
  let clientGone = false;
  // 'close' also fires after a normal end; only an unfinished response means the client left.
  const onClose = () => {
    if (!res.writableFinished) {
      clientGone = true;
      controller.abort();
    }
  };
  res.on('close', onClose);
  try {
    const stream = ctx.engine.generate(job.input, job.params, { signal: controller.signal });
    let first: IteratorResult<EngineDelta>;
    try {
      first = await stream.next();
    } catch (e) {
      throw fromEngineError(e, promptField);
    }
    if (clientGone) {
      ctx.metrics.failed('client_disconnected');
      reply.hijack();
      return;
    }
    const head = newHead(job.endpoint, job.model);
    if (job.stream) await streamResponse(ctx, job, head, first, stream, reply, clock, () => clientGone);
    else await wholeResponse(ctx, job, head, first, stream, reply, clock, () => clientGone);
  } finally {
    res.off('close', onClose);
  }
}

type Deltas = AsyncIterator<EngineDelta>;

async function wholeResponse(
  ctx: GenerationContext, job: GenerationJob, head: ResponseHead, first: IteratorResult<EngineDelta>, stream: Deltas,
  reply: FastifyReply, clock: TokenClock, clientGone: () => boolean,
): Promise<void> {
  let text = '';
  const logprobs: NonNullable<EngineDelta['logprobs']> = [];
  let last: EngineDelta | undefined;
  try {
    for (let r = first; !r.done; r = await stream.next()) {
      clock.observe(r.value);
      text += r.value.text;
      if (r.value.logprobs) logprobs.push(...r.value.logprobs);
      last = r.value;
    }
  } catch (e) {
    throw fromEngineError(e, job.endpoint === 'chat' ? 'messages' : 'prompt');
  }
  if (clientGone()) {
    ctx.metrics.failed('client_disconnected');
    reply.hijack();
    return;
  }
  const usage = last?.usage ?? emptyUsage();
  clock.finish();
  ctx.metrics.finished(last?.finish_reason ?? 'stop', usage.prompt_tokens, usage.completion_tokens);
  const wanted = job.params.logprobs === true;
  const body =
    job.endpoint === 'chat'
      ? chatResponse(head, text, wanted ? chatLogprobs(ctx.texts, logprobs) : null, last?.finish_reason, usage)
      : completionResponse(head, text, wanted ? completionLogprobs(ctx.texts, logprobs, 0) : null, last?.finish_reason, usage);
  await reply.code(200).send(body);
}

async function streamResponse(
  ctx: GenerationContext, job: GenerationJob, head: ResponseHead, first: IteratorResult<EngineDelta>, stream: Deltas,
  reply: FastifyReply, clock: TokenClock, clientGone: () => boolean,
): Promise<void> {
  reply.hijack();
  const sse = new SseWriter(reply.raw);
  sse.open();
  const chat = job.endpoint === 'chat';
  const wanted = job.params.logprobs === true;
  if (chat) sse.data(chatChunk(head, { role: 'assistant', content: '' }, null, undefined, job.includeUsage));
  let offset = 0;
  let last: EngineDelta | undefined;
  try {
    for (let r = first; !r.done; r = await stream.next()) {
      const d = r.value;
      clock.observe(d);
      last = d;
      if (!d.text && !d.logprobs?.length) continue;
      if (chat) {
        sse.data(chatChunk(head, { content: d.text }, wanted && d.logprobs ? chatLogprobs(ctx.texts, d.logprobs) : null, undefined, job.includeUsage));
      } else {
        sse.data(completionChunk(head, d.text, wanted && d.logprobs ? completionLogprobs(ctx.texts, d.logprobs, offset) : null, undefined, job.includeUsage));
      }
      offset += d.text.length;
    }
  } catch (e) {
    // Headers are gone: the error travels as a data frame, as OpenAI's own streams do.
    const err = fromEngineError(e, chat ? 'messages' : 'prompt');
    ctx.metrics.failed(err.status >= 500 ? 'server_error' : 'invalid_request');
    sse.data(err.body());
    sse.done();
    return;
  }
  if (clientGone()) {
    ctx.metrics.failed('client_disconnected');
    sse.end();
    return;
  }
  const usage: Usage = last?.usage ?? emptyUsage();
  clock.finish();
  ctx.metrics.finished(last?.finish_reason ?? 'stop', usage.prompt_tokens, usage.completion_tokens);
  sse.data(chat ? chatChunk(head, {}, null, last?.finish_reason, job.includeUsage) : completionChunk(head, '', null, last?.finish_reason, job.includeUsage));
  if (job.includeUsage) sse.data(usageChunk(head, job.endpoint, usage));
  sse.done();
}
