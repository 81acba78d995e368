// The HTTP server: fastify with the OpenAI routes, health and metrics, the KV live feed and the web UI.
// Every error leaves as OpenAI's error JSON. Draining for shutdown closes idle connections at once,
// gives the requests in flight a grace period, then ends the rest with an error.
import { setMaxListeners } from 'node:events';
import Fastify, { type FastifyError, type FastifyInstance, type FastifyReply, type FastifyRequest } from 'fastify';
import { allowed } from './access.js';
import { Admission } from './admission.js';
import { answeredEarly, enforceBodyDeadline } from './body-deadline.js';
import { Connections } from './connections.js';
import type { ServingEngine } from './engine-like.js';
import { ApiError, methodNotAllowed, routeNotFound, shuttingDown, unauthorized, unsupportedMediaType } from './errors.js';
import { KvFeed } from './kv-feed.js';
import { BlockEventStreams } from './kv-events.js';
import { ServerMetrics, type FailureReason } from './metrics.js';
import type { TokenTexts } from './openai-format.js';
import { registerOpenAIRoutes } from './routes-openai.js';
import { loadStaticFiles } from './static-ui.js';
import { handleCors } from './cors.js';
import { RouteMethods } from './method-not-allowed.js';
import { requestId } from './request-id.js';

export interface ServerOptions {
  engine: ServingEngine;
  /** Token id -> bytes, for logprobs. */
  tokenTexts: TokenTexts;
  modelName: string;
  /** When set, /v1/* and the KV feed need it ("Authorization: Bearer KEY"; the feed also takes ?api_key=KEY). */
  apiKey?: string;
  /** When set, /metrics needs "Authorization: Bearer KEY". */
  metricsKey?: string;
  /** Generation requests held at once before 429 (default: 8 x the engine's slots). */
  maxInflight?: number;
  /** Largest request body in bytes (default 4 MiB). */
  bodyLimit?: number;
  /** Time for a request's headers to arrive, in ms (default 60 s, Node's). */
  headersTimeoutMs?: number;
  /** Time for a request's body to arrive once its headers are in, in ms (default 30 s); then 408. */
  bodyTimeoutMs?: number;
  /** Connections open at once; more are closed as they arrive (default 1024). */
  maxConnections?: number;
  /** How long draining waits for the requests in flight before ending them with an error, in ms (default 30 s). */
  drainTimeoutMs?: number;
  /** How often the KV live feed samples the engine (default 100 ms). */
  kvFeedIntervalMs?: number;
  /** Log one line per request to stdout (fastify's logger). */
  log?: boolean;
  /** An origin (or '*') whose browser pages may call the API (CORS); unset, no CORS headers are sent. */
  corsOrigin?: string;
}

export interface VserveServer {
  app: FastifyInstance;
  metrics: ServerMetrics;
  admission: Admission;
  connections: Connections;
  /**
   * Stops accepting and closes idle connections; waits up to the drain timeout for the requests in
   * flight, then ends the rest with an error and closes the listener.
   */
  drain(): Promise<void>;
}

function failureReason(err: ApiError): FailureReason {
  const status = err.status;
  if (err.code === 'server_shutdown') return 'shutdown';
  if (status === 408) return 'timeout';
  if (status === 401) return 'unauthorized';
  if (status === 404) return 'not_found';
  if (status === 413) return 'too_large';
  if (status === 415) return 'unsupported_media_type';
  if (status === 429 || status === 503) return 'rejected';
  return status >= 500 ? 'server_error' : 'invalid_request';
}

/** "at most 4194304 bytes (4 MiB)". */
function sizeText(bytes: number): string {
  const mib = bytes / (1024 * 1024);
  return `at most ${bytes} bytes (${mib >= 1 ? `${Number(mib.toFixed(2))} MiB` : `${Number((bytes / 1024).toFixed(2))} KiB`})`;
}

/** JSON.parse's message without its own "JSON" wording ("... is not valid JSON", "of JSON input"), which ours already says. */
function jsonProblem(message: string): string {
  return message.replace(/, ".*" is not valid JSON$/s, '').replace(/ of JSON input$/, ' of the body').replace(/ in JSON at /, ' at ');
}

/** fastify's own errors (bad JSON, body too large, bad content type) as OpenAI errors. */
function toApiError(e: FastifyError | ApiError | Error, bodyLimit: number): ApiError {
  if (e instanceof ApiError) return e;
  const status = (e as FastifyError).statusCode;
  if (status === 413) return new ApiError(413, `The request body is larger than the server accepts (${sizeText(bodyLimit)}).`, 'invalid_request_error', null, 'request_too_large');
  if (status !== undefined && status >= 400 && status < 500) {
    return new ApiError(status, e.message, 'invalid_request_error', null, 'invalid_request');
  }
  return new ApiError(500, 'Internal server error.', 'server_error', null, 'internal_error');
}

function sendError(reply: FastifyReply, err: ApiError): FastifyReply {
  return reply.code(err.status).headers(err.headers).type('application/json').send(err.body());
}

/** JSON is read for application/json (any parameters) and for a body with no declared type. */
function isJsonType(contentType: string | undefined): boolean {
  return contentType === undefined || contentType.split(';')[0]!.trim().toLowerCase() === 'application/json';
}

/** The upload ended because the client went away (not a bad request). */
function uploadAborted(req: FastifyRequest): boolean {
  return !req.raw.complete && (req.raw.destroyed || req.raw.socket.destroyed);
}

export async function createServer(o: ServerOptions): Promise<VserveServer> {
  const info = o.engine.info;
  const bodyLimit = o.bodyLimit ?? 4 * 1024 * 1024;
  const app = Fastify({
    bodyLimit,
    genReqId: requestId,
    requestIdHeader: false,
    logger: o.log ?? false,
    // Our own 503 (OpenAI-shaped, with Retry-After) instead of fastify's.
    return503OnClosing: false,
    // Draining closes connections itself (see Connections).
    forceCloseConnections: false,
  });
  app.server.headersTimeout = o.headersTimeoutMs ?? 60_000;
  app.server.maxConnections = o.maxConnections ?? 1024;
  const connections = new Connections(app.server);
  const drainTimeoutMs = o.drainTimeoutMs ?? 30_000;
  const shutdown = new AbortController();
  // Every request in flight listens for the end of the grace period.
  setMaxListeners(0, shutdown.signal);
  const metrics = new ServerMetrics(o.modelName);
  const admission = new Admission(o.maxInflight ?? info.maxSeqs * 8);
  const feed = new KvFeed(o.engine, o.kvFeedIntervalMs);
  const blockStreams = new BlockEventStreams(o.engine);
  const files = loadStaticFiles();

  app.removeAllContentTypeParsers();
  app.addContentTypeParser('*', { parseAs: 'string' }, (req, body, done) => {
    const type = req.headers['content-type'];
    if (!isJsonType(type)) return done(unsupportedMediaType(type!), undefined);
    try {
      done(null, body === '' ? undefined : JSON.parse(body as string));
    } catch (e) {
      // Answered here, where the cause is known, rather than recognised later by its class.
      done(new ApiError(400, `The body is not valid JSON: ${jsonProblem((e as Error).message)}.`, 'invalid_request_error', null, 'invalid_request'), undefined);
    }
  });

  enforceBodyDeadline(app, { timeoutMs: o.bodyTimeoutMs ?? 30_000, shutdown: shutdown.signal, onEnded: (err) => metrics.failed(failureReason(err)) });

  app.setErrorHandler((e: FastifyError | ApiError, req, reply) => {
    if (answeredEarly.has(req.raw)) return;
    if (uploadAborted(req)) {
      metrics.failed('client_disconnected');
      return;
    }
    const err = toApiError(e, bodyLimit);
    if (err.status >= 500) req.log.error(e);
    metrics.failed(failureReason(err));
    if (reply.sent || reply.raw.headersSent) return;
    return sendError(reply, err);
  });

  const routes = new RouteMethods(app);
  app.setNotFoundHandler((req, reply) => {
    metrics.failed('not_found');
    const allow = routes.allowed(req.url);
    return sendError(reply, allow.length > 0 ? methodNotAllowed(req.method, req.url, allow) : routeNotFound(req.method, req.url));
  });

  app.addHook('onRequest', async (req, reply) => {
    reply.raw.setHeader('x-request-id', req.id);
    if (o.corsOrigin !== undefined && handleCors(o.corsOrigin, req, reply)) return reply;
    if (admission.isDraining && req.url !== '/health') throw shuttingDown();
    if (!allowed(req, o)) throw unauthorized();
  });

  app.get('/health', async (_req, reply) => (admission.isDraining ? reply.code(503).send({ status: 'draining' }) : { status: 'ok' }));

  app.get('/metrics', async (_req, reply) => {
    const stats = await o.engine.stats().catch(() => undefined);
    return reply.type(metrics.contentType).send(await metrics.render(stats));
  });

  app.get('/api/kv', async () => feed.snapshot());
  app.get('/api/info', async () => ({ model: o.modelName, ...info, modelPath: undefined, authRequired: o.apiKey !== undefined }));
  app.get('/api/kv/stream', (_req, reply) => {
    reply.hijack();
    feed.subscribe(reply.raw);
  });

  // The prefix cache's blocks as they come and go, for `vserve router` (see kv-events.ts).
  app.get('/v1/kv/events', async (_req, reply) => {
    await blockStreams.subscribe(reply);
    return reply;
  });

  for (const [path, file] of files) app.get(path, async (_req, reply) => reply.type(file.type).send(file.body));

  registerOpenAIRoutes(app, {
    engine: o.engine,
    metrics,
    texts: o.tokenTexts,
    modelName: o.modelName,
    admission,
    shutdown: shutdown.signal,
    drainTimeoutMs,
    started: () => feed.sampleNow(),
    created: Math.floor(Date.now() / 1000),
    maxContext: info.maxContext,
  });

  const drain = async () => {
    void admission.drain();
    feed.close();
    blockStreams.close();
    // Stop listening now; app.close() resolves once every connection has ended.
    const closed = app.close();
    connections.closeIdle();
    if (!(await connections.allClosedWithin(drainTimeoutMs))) {
      // Grace period over: each request still open answers with an error, then its connection closes.
      shutdown.abort();
      if (!(await connections.allClosedWithin(1000))) connections.destroyAll();
    }
    await closed;
  };
  return { app, metrics, admission, connections, drain };
}
