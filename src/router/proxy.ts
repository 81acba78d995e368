// Forwards one generation request to the replica the policy picks, and its answer back as it comes. A
// replica that fails before answering (it cannot be reached, dies while the request waits or computes,
// or says it is shutting down or full) is left out and the request goes to the next choice: nothing has
// reached the client yet, so it never notices. Once a stream has started, the client has tokens from
// that replica; if the replica dies then, the stream ends with an error event saying so.
import type { IncomingHttpHeaders, IncomingMessage, ServerResponse } from 'node:http';
import { Readable } from 'node:stream';
import type { FastifyReply, FastifyRequest } from 'fastify';
import { sseFrames } from '../loadgen/sse-frames.js';
import { ApiError } from '../server/errors.js';
import type { Endpoint } from '../server/openai-format.js';
import { fetchFailure } from './fetch-failure.js';
import type { InFlight, Replica } from './replica.js';
import type { ReplicaPool } from './replica-pool.js';
import type { RequestTokens } from './request-tokens.js';
import type { RouterMetrics } from './router-metrics.js';
import type { RoutingPolicy } from './routing-policy.js';
import { readText, upstream } from './upstream.js';

export interface ProxyContext {
  pool: ReplicaPool;
  policy: RoutingPolicy;
  metrics: RouterMetrics;
  tokens: RequestTokens;
  /** Sent with every request to a replica (its API key). */
  replicaHeaders: Record<string, string>;
}

/** Replica answers that mean "not now, not here": another replica may well take the request. */
const TRY_ELSEWHERE = new Set([429, 503]);

/** Response headers passed on to the client (the rest are about the replica's own connection). */
const PASSED_HEADERS = ['content-type', 'cache-control', 'retry-after', 'x-request-id', 'x-accel-buffering', 'allow'];

/** Names the replica that answered, for the client's logs and for tracing a conversation's turns. */
export const REPLICA_HEADER = 'x-vserve-replica';

export const noReplica = () =>
  new ApiError(503, 'No replica is up to take the request; retry later.', 'server_error', null, 'no_replica', { 'retry-after': '1' });

const allFailed = (reasons: string[]) =>
  new ApiError(502, `The request failed on every replica it was tried on: ${reasons.join('; ')}.`, 'server_error', null, 'replicas_failed');

const brokenStream = (url: string, reason: string) =>
  new ApiError(502, `The replica ${url} failed while streaming this response (${reason}); the response is incomplete.`, 'server_error', null, 'replica_failed');

/** Proxies a POST to /v1/completions or /v1/chat/completions; the body is forwarded exactly as it came. */
export async function proxyGeneration(ctx: ProxyContext, endpoint: Endpoint, req: FastifyRequest, reply: FastifyReply): Promise<void> {
  const raw = typeof req.body === 'string' ? req.body : '';
  const route = ctx.pool.route(ctx.tokens.prompt(endpoint, parseJson(raw)));
  const clientGone = new AbortController();
  const onClose = () => {
    if (!reply.raw.writableFinished) clientGone.abort();
  };
  reply.raw.on('close', onClose);
  const tried = new Set<Replica>();
  const reasons: string[] = [];
  /** The last "not now" answer, passed on when no replica is left to try. */
  let refusal: { status: number; headers: IncomingHttpHeaders; body: string; replica: string } | undefined;
  try {
    for (;;) {
      const candidates = ctx.pool.eligible(tried);
      if (candidates.length === 0) {
        if (refusal) return void sendAnswer(reply, refusal.status, refusal.headers, refusal.body, refusal.replica);
        ctx.metrics.notRouted(tried.size === 0 ? 'no_replica' : 'all_failed');
        throw tried.size === 0 ? noReplica() : allFailed(reasons);
      }
      const decision = ctx.policy.choose(candidates, route);
      const replica = decision.replica;
      ctx.metrics.decided(ctx.policy.name, decision, Math.ceil(route.blocks));
      ctx.metrics.sent(replica, endpoint);
      const inFlight: InFlight = { chain: route.chain, blocks: route.blocks, prefill: Math.max(0, route.blocks - decision.overlapBlocks), started: false };
      replica.begin(inFlight);
      try {
        const headers = {
          'content-type': req.headers['content-type'] ?? 'application/json',
          accept: req.headers.accept ?? '*/*',
          ...ctx.replicaHeaders,
        };
        let res: IncomingMessage;
        let body: string | undefined;
        try {
          res = await upstream(`${replica.url}${req.url}`, { method: 'POST', headers, body: raw, signal: clientGone.signal });
          inFlight.started = true;
          // An answer sent whole is read whole before anything goes out, so a replica dying meanwhile is retried too.
          if (!isEventStream(res)) body = await readText(res);
        } catch (e) {
          if (clientGone.signal.aborted) return void reply.hijack();
          const reason = fetchFailure(e);
          replica.markDown(reason);
          reasons.push(`${replica.url}: ${reason}`);
          ctx.metrics.retried(replica);
          tried.add(replica);
          continue;
        }
        if (TRY_ELSEWHERE.has(res.statusCode!)) {
          const text = body ?? (await readText(res).catch(() => ''));
          refusal = { status: res.statusCode!, headers: res.headers, body: text, replica: replica.url };
          reasons.push(`${replica.url}: answered ${res.statusCode}`);
          ctx.metrics.retried(replica);
          tried.add(replica);
          continue;
        }
        if (body !== undefined) return void sendAnswer(reply, res.statusCode!, res.headers, body, replica.url);
        reply.hijack();
        await passStream(ctx, replica, res, reply.raw, clientGone.signal);
        return;
      } finally {
        replica.end(inFlight);
      }
    }
  } finally {
    reply.raw.off('close', onClose);
  }
}

/** Forwards a GET (/v1/models) to a replica that is up, trying the next when one cannot be reached. */
export async function proxyGet(ctx: ProxyContext, req: FastifyRequest, reply: FastifyReply): Promise<void> {
  const reasons: string[] = [];
  for (const replica of ctx.pool.eligible()) {
    try {
      const res = await upstream(`${replica.url}${req.url}`, { method: 'GET', headers: { accept: 'application/json', ...ctx.replicaHeaders }, signal: AbortSignal.timeout(10_000) });
      return void sendAnswer(reply, res.statusCode!, res.headers, await readText(res), replica.url);
    } catch (e) {
      reasons.push(`${replica.url}: ${fetchFailure(e)}`);
    }
  }
  throw reasons.length === 0 ? noReplica() : allFailed(reasons);
}

function parseJson(text: string): unknown {
  try {
    return JSON.parse(text);
  } catch {
    return undefined;
  }
}

function isEventStream(res: IncomingMessage): boolean {
  return (res.headers['content-type'] ?? '').startsWith('text/event-stream');
}

function passedHeaders(headers: IncomingHttpHeaders, replica: string): Record<string, string> {
  const out: Record<string, string> = { [REPLICA_HEADER]: replica };
  for (const name of PASSED_HEADERS) {
    const v = headers[name];
    if (typeof v === 'string') out[name] = v;
  }
  return out;
}

function sendAnswer(reply: FastifyReply, status: number, headers: IncomingHttpHeaders, body: string, replica: string): FastifyReply {
  return reply.code(status).headers(passedHeaders(headers, replica)).send(body);
}

/**
 * Passes an event stream on frame by frame (a frame is written once whole, so an error event never lands
 * inside half a frame). A stream that breaks off, or ends without OpenAI's [DONE], gets an error event.
 */
async function passStream(ctx: ProxyContext, replica: Replica, res: IncomingMessage, out: ServerResponse, clientGone: AbortSignal): Promise<void> {
  out.writeHead(res.statusCode!, passedHeaders(res.headers, replica.url));
  out.flushHeaders();
  let done = false;
  let failure: string | undefined;
  try {
    for await (const frame of sseFrames(Readable.toWeb(res) as ReadableStream)) {
      if (frame === 'data: [DONE]') done = true;
      if (!out.write(`${frame}\n\n`)) await drained(out, clientGone);
    }
    if (!done) failure = 'the stream ended without [DONE]';
  } catch (e) {
    if (!clientGone.aborted) failure = fetchFailure(e);
  }
  if (clientGone.aborted || out.destroyed) {
    out.destroy();
    return;
  }
  if (failure !== undefined) {
    replica.markDown(`a response stream broke off: ${failure}`);
    ctx.metrics.streamBroken(replica);
    // As the replicas themselves report errors once a stream has begun: a data frame, then [DONE].
    out.write(`data: ${JSON.stringify(brokenStream(replica.url, failure).body())}\n\n`);
    out.write('data: [DONE]\n\n');
  }
  out.end();
}

function drained(out: ServerResponse, clientGone: AbortSignal): Promise<void> {
  return new Promise((resolve) => {
    const done = () => {
      out.off('drain', done);
      out.off('close', done);
      clientGone.removeEventListener('abort', done);
      resolve();
    };
    out.once('drain', done);
    out.once('close', done);
    clientGone.addEventListener('abort', done, { once: true });
  });
}
