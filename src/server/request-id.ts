// Every response carries x-request-id: the client's own when it sent a sane one (so its logs and ours
// line up), else one made here. Set on the raw response so hijacked SSE streams carry it too.
import { randomUUID } from 'node:crypto';
import type { IncomingMessage } from 'node:http';

/** Printable, short and free of anything a log line or header could be split by. */
const SANE = /^[A-Za-z0-9._:\-]{1,128}$/;

/** fastify's genReqId: the request's id, which its logger also reports. */
export function requestId(req: IncomingMessage): string {
  const sent = req.headers['x-request-id'];
  return typeof sent === 'string' && SANE.test(sent) ? sent : randomUUID();
}
