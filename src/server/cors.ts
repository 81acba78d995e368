// CORS for browsers on other origins (--cors-origin; off by default, so only same-origin pages can
// read responses). The few headers are set by hand on the raw response, so errors and hijacked SSE
// streams carry them too; a preflight OPTIONS is answered here, before the API key is asked for.
import type { FastifyReply, FastifyRequest } from 'fastify';

const METHODS = 'GET, POST, OPTIONS';
const HEADERS = 'authorization, content-type, x-request-id';

/** Sets the CORS headers for an allowed origin; returns true when the request was a preflight and is answered. */
export function handleCors(allowedOrigin: string, req: FastifyRequest, reply: FastifyReply): boolean {
  const origin = req.headers.origin;
  const res = reply.raw;
  res.setHeader('vary', 'Origin');
  if (origin === undefined || (allowedOrigin !== '*' && origin !== allowedOrigin)) return false;
  res.setHeader('access-control-allow-origin', allowedOrigin === '*' ? '*' : origin);
  res.setHeader('access-control-expose-headers', 'x-request-id, retry-after');
  if (req.method !== 'OPTIONS' || req.headers['access-control-request-method'] === undefined) return false;
  res.setHeader('access-control-allow-methods', METHODS);
  res.setHeader('access-control-allow-headers', HEADERS);
  res.setHeader('access-control-max-age', '600');
  void reply.code(204).send();
  return true;
}
