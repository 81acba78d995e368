// The HTTP server: fastify with the OpenAI routes, health and metrics, the KV live feed and the web UI.
// Every error leaves as OpenAI's error JSON; draining for shutdown finishes the requests in flight.
import { timingSafeEqual } from 'node:crypto';
import Fastify, { type FastifyError, type FastifyInstance, type FastifyReply } from 'fastify';
import { Admission } from './admission.js';
import type { ServingEngine } from './engine-like.js';
import { ApiError, routeNotFound, shuttingDown, unauthorized } from './errors.js';
import { KvFeed } from './kv-feed.js';
import { ServerMetrics, type FailureReason } from './metrics.js';
import type { TokenTexts } from './openai-format.js';
import { registerOpenAIRoutes } from './routes-openai.js';
import { loadStaticFiles } from './static-ui.js';

export interface ServerOptions {
  engine: ServingEngine;
  /** Token id -> bytes, for logprobs. */
  tokenTexts: TokenTexts;
  modelName: string;
  /** When set, /v1/* needs "Authorization: Bearer KEY". */
  apiKey?: string;
  /** Generation requests held at once before 429 (default: 8 x the engine's slots). */
  maxInflight?: number;
  /** Largest request body in bytes (default 4 MiB). */
  bodyLimit?: number;
  /** How often the KV live feed samples the engine (default 200 ms). */
  kvFeedIntervalMs?: number;
  /** Log one line per request to stdout (fastify's logger). */
  log?: boolean;
}

export interface VserveServer {
  app: FastifyInstance;
  metrics: ServerMetrics;
  admission: Admission;
  /** Stops accepting, waits for the requests in flight, then closes the listener. */
  drain(): Promise<void>;
}

function failureReason(status: number): FailureReason {
  if (status === 401) return 'unauthorized';
  if (status === 404) return 'not_found';
  if (status === 413) return 'too_large';
  if (status === 429 || status === 503) return 'rejected';
  return status >= 500 ? 'server_error' : 'invalid_request';
}

/** fastify's own errors (bad JSON, body too large, bad content type) as OpenAI errors. */
function toApiError(e: FastifyError | ApiError | Error): ApiError {
  if (e instanceof ApiError) return e;
  const status = (e as FastifyError).statusCode;
  if (status === 413) return new ApiError(413, `The request body is larger than the server accepts.`, 'invalid_request_error', null, 'request_too_large');
  if (status !== undefined && status >= 400 && status < 500) {
    const message = (e as FastifyError).code === 'FST_ERR_CTP_INVALID_JSON_BODY' || e instanceof SyntaxError ? `The body is not valid JSON: ${e.message}` : e.message;
    return new ApiError(status, message, 'invalid_request_error', null, 'invalid_request');
  }
  return new ApiError(500, 'Internal server error.', 'server_error', null, 'internal_error');
}

function sendError(reply: FastifyReply, err: ApiError): FastifyReply {
  return reply.code(err.status).headers(err.headers).type('application/json').send(err.body());
}

function keyMatches(header: string | undefined, key: string): boolean {
  const m = /^Bearer\s+(.+)$/i.exec(header ?? '');
  if (!m) return false;
  const given = Buffer.from(m[1]!.trim());
  const want = Buffer.from(key);
  return given.length === want.length && timingSafeEqual(given, want);
}

export async function createServer(o: ServerOptions): Promise<VserveServer> {
  const info = o.engine.info;
  const app = Fastify({
    bodyLimit: o.bodyLimit ?? 4 * 1024 * 1024,
    logger: o.log ?? false,
    // Our own 503 (OpenAI-shaped, with Retry-After) instead of fastify's.
    return503OnClosing: false,
  });
  const metrics = new ServerMetrics(o.modelName);
  const admission = new Admission(o.maxInflight ?? info.maxSeqs * 8);
  const feed = new KvFeed(o.engine, o.kvFeedIntervalMs);
  const files = loadStaticFiles();

  // curl -d sends form encoding by default; every body is read as JSON whatever its declared type.
  app.addContentTypeParser('*', { parseAs: 'string' }, (_req, body, done) => {
    try {
      done(null, body === '' ? undefined : JSON.parse(body as string));
    } catch (e) {
      (e as FastifyError).statusCode = 400;
      done(e as Error, undefined);
    }
  });

  app.setErrorHandler((e: FastifyError | ApiError, req, reply) => {
    const err = toApiError(e);
    if (err.status >= 500) req.log.error(e);
    metrics.failed(failureReason(err.status));
    if (reply.sent || reply.raw.headersSent) return;
    return sendError(reply, err);
  });

  app.setNotFoundHandler((req, reply) => {
    metrics.failed('not_found');
    return sendError(reply, routeNotFound(req.method, req.url));
  });

  app.addHook('onRequest', async (req) => {
    if (admission.isDraining && req.url !== '/health') throw shuttingDown();
    if (o.apiKey && req.url.startsWith('/v1/') && !keyMatches(req.headers.authorization, o.apiKey)) throw unauthorized();
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

  for (const [path, file] of files) app.get(path, async (_req, reply) => reply.type(file.type).send(file.body));

  registerOpenAIRoutes(app, {
    engine: o.engine,
    metrics,
    texts: o.tokenTexts,
    modelName: o.modelName,
    admission,
    created: Math.floor(Date.now() / 1000),
    maxContext: info.maxContext,
  });

  const drain = async () => {
    const idle = admission.drain();
    feed.close();
    // Stop listening now; app.close() resolves once every connection has ended.
    const closed = app.close();
    await idle;
    app.server.closeIdleConnections();
    await closed;
  };
  return { app, metrics, admission, drain };
}
