// `vserve router`'s HTTP side: the OpenAI API of the replicas behind it (generation routed by the policy,
// /v1/models from any replica that is up), /health (the replicas' states) and /metrics. Errors leave as
// OpenAI's error JSON, as the replicas' own do.
import Fastify, { type FastifyError, type FastifyInstance, type FastifyReply, type FastifyRequest } from 'fastify';
import { allowed } from '../server/access.js';
import { ApiError, routeNotFound, unauthorized } from '../server/errors.js';
import { proxyGeneration, proxyGet, type ProxyContext } from './proxy.js';
import { ReplicaPool } from './replica-pool.js';
import { RequestTokens } from './request-tokens.js';
import { RouterMetrics } from './router-metrics.js';
import { createPolicy, type PolicyName } from './routing-policy.js';

export interface RouterOptions {
  /** Base URLs of the replicas (http://host:port, without /v1). */
  replicas: readonly string[];
  /** The GGUF file the replicas serve: its tokenizer and chat template turn requests into prompt tokens. */
  modelPath: string;
  /** The replicas' blend separator (their --blend-separator; default " # # "): cuts blending text prompts as they do. */
  blendSeparator?: string;
  /** Default 'prefix'. */
  policy?: PolicyName;
  /** The prefix policy's weight of a prompt block to compute against a block in flight (default 1). */
  overlapWeight?: number;
  /** When set, /v1/* needs "Authorization: Bearer KEY". */
  apiKey?: string;
  /** When set, /metrics needs "Authorization: Bearer KEY". */
  metricsKey?: string;
  /** The key the replicas were started with (--api-key), sent to them with every request. */
  replicaApiKey?: string;
  /** How often each replica's /health is polled, in ms (default 1000). */
  healthIntervalMs?: number;
  /** Largest request body in bytes (default 4 MiB, as the replicas'). */
  bodyLimit?: number;
  /** Where replica state changes are reported (default: stderr). */
  onEvent?: (line: string) => void;
}

export interface VserveRouter {
  app: FastifyInstance;
  pool: ReplicaPool;
  metrics: RouterMetrics;
  /** Stops listening, then stops watching the replicas. */
  close(): Promise<void>;
}

/** Base URLs as given, checked: http(s), no path beyond "/", no duplicates. */
export function replicaUrls(urls: readonly string[]): string[] {
  const out: string[] = [];
  for (const given of urls) {
    let url: URL;
    try {
      url = new URL(given);
    } catch {
      throw new RangeError(`replica "${given}" is not a URL; give it as http://HOST:PORT`);
    }
    if (url.protocol !== 'http:' && url.protocol !== 'https:') throw new RangeError(`replica "${given}" must be an http:// or https:// URL`);
    if (url.pathname !== '/' || url.search || url.hash) throw new RangeError(`replica "${given}" must be the server's base URL (http://HOST:PORT), without a path such as /v1`);
    const base = url.origin;
    if (out.includes(base)) throw new RangeError(`replica ${base} is given twice`);
    out.push(base);
  }
  return out;
}

export async function createRouter(o: RouterOptions): Promise<VserveRouter> {
  const tokens = RequestTokens.open(o.modelPath, o.blendSeparator);
  const replicaHeaders: Record<string, string> = o.replicaApiKey === undefined ? {} : { authorization: `Bearer ${o.replicaApiKey}` };
  const pool = new ReplicaPool(replicaUrls(o.replicas), {
    modelFingerprint: tokens.modelFingerprint,
    headers: replicaHeaders,
    healthIntervalMs: o.healthIntervalMs,
    log: o.onEvent ?? ((line) => console.error(`vserve router: ${line}`)),
  });
  const policy = createPolicy(o.policy ?? 'prefix', o.overlapWeight);
  const metrics = new RouterMetrics(pool);
  const ctx: ProxyContext = { pool, policy, metrics, tokens, replicaHeaders };
  const bodyLimit = o.bodyLimit ?? 4 * 1024 * 1024;

  const app = Fastify({ bodyLimit, return503OnClosing: false });
  // Bodies are forwarded exactly as they came; the replicas judge their type and JSON.
  app.removeAllContentTypeParsers();
  app.addContentTypeParser('*', { parseAs: 'string' }, (_req, body, done) => done(null, body));

  app.setErrorHandler((e: FastifyError | ApiError, req, reply) => {
    const err = e instanceof ApiError ? e : fastifyError(e, bodyLimit);
    if (err.status >= 500 && !(e instanceof ApiError)) req.log.error(e);
    if (reply.sent || reply.raw.headersSent) return;
    return reply.code(err.status).headers(err.headers).type('application/json').send(err.body());
  });
  app.setNotFoundHandler((req, reply) => {
    const err = routeNotFound(req.method, req.url);
    return reply.code(err.status).type('application/json').send(err.body());
  });
  app.addHook('onRequest', async (req) => {
    if (!allowed(req, { apiKey: o.apiKey, metricsKey: o.metricsKey })) throw unauthorized();
  });

  app.get('/health', async (_req, reply) => {
    const replicas = pool.replicas.map((r) => ({
      url: r.url, state: r.state, takesRequests: r.eligible, inFlight: r.inFlight, cachedBlocks: r.cachedBlocks, ...(r.incompatible ? { problem: r.incompatible } : {}),
    }));
    const up = replicas.some((r) => r.takesRequests);
    return reply.code(up ? 200 : 503).send({ status: up ? 'ok' : 'no_replica', policy: policy.name, replicas });
  });
  app.get('/metrics', async (_req, reply) => reply.type(metrics.contentType).send(await metrics.render()));
  const models = async (req: FastifyRequest, reply: FastifyReply) => {
    await proxyGet(ctx, req, reply);
    return reply;
  };
  app.get('/v1/models', models);
  app.get('/v1/models/:id', models);
  app.post('/v1/completions', async (req, reply) => {
    await proxyGeneration(ctx, 'completion', req, reply);
    return reply;
  });
  app.post('/v1/chat/completions', async (req, reply) => {
    await proxyGeneration(ctx, 'chat', req, reply);
    return reply;
  });

  pool.start();
  return {
    app,
    pool,
    metrics,
    close: async () => {
      await app.close();
      await pool.stop();
    },
  };
}

/** fastify's own errors (body too large, malformed request) as OpenAI errors. */
function fastifyError(e: FastifyError, bodyLimit: number): ApiError {
  const status = e.statusCode;
  if (status === 413) return new ApiError(413, `The request body is larger than the router accepts (at most ${bodyLimit} bytes).`, 'invalid_request_error', null, 'request_too_large');
  if (status !== undefined && status >= 400 && status < 500) return new ApiError(status, e.message, 'invalid_request_error', null, 'invalid_request');
  return new ApiError(500, 'Internal router error.', 'server_error', null, 'internal_error');
}
