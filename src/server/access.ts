// Which routes need which key. With --api-key, /v1/* and the KV feed need it; /metrics needs
// --metrics-key when one is set (Prometheus sends it as a bearer token). The key comes as
// "Authorization: Bearer KEY"; the KV feed also takes it as ?api_key=KEY, since a browser's
// EventSource cannot set headers.
import { timingSafeEqual } from 'node:crypto';
import type { FastifyRequest } from 'fastify';

export interface AccessKeys {
  apiKey?: string;
  metricsKey?: string;
}

function same(given: string, key: string): boolean {
  const a = Buffer.from(given);
  const b = Buffer.from(key);
  return a.length === b.length && timingSafeEqual(a, b);
}

function bearer(req: FastifyRequest): string | undefined {
  return /^Bearer\s+(.+)$/i.exec(req.headers.authorization ?? '')?.[1]?.trim();
}

function queryKey(req: FastifyRequest): string | undefined {
  const v = (req.query as Record<string, unknown> | undefined)?.api_key;
  return typeof v === 'string' ? v : undefined;
}

/** The key this route needs, or undefined when it is open. */
function requiredKey(path: string, keys: AccessKeys): { key: string; inQuery: boolean } | undefined {
  if (keys.apiKey !== undefined && path.startsWith('/v1/')) return { key: keys.apiKey, inQuery: false };
  if (keys.apiKey !== undefined && (path === '/api/kv' || path === '/api/kv/stream')) return { key: keys.apiKey, inQuery: true };
  if (keys.metricsKey !== undefined && path === '/metrics') return { key: keys.metricsKey, inQuery: false };
  return undefined;
}

/** True when the request may use its route. */
export function allowed(req: FastifyRequest, keys: AccessKeys): boolean {
  const need = requiredKey(req.url.split('?')[0]!, keys);
  if (!need) return true;
  const given = bearer(req) ?? (need.inQuery ? queryKey(req) : undefined);
  return given !== undefined && same(given, need.key);
}
