// A request whose body does not arrive in time is answered 408 and its connection closed; one still
// receiving its body when the drain's grace period ends is answered 503. Without this a client that
// stops mid-body holds its connection (and the drain) forever. The clock starts when the headers are in
// and stops once fastify has the whole body (preValidation) or the response has ended.
import type { FastifyInstance } from 'fastify';
import type { IncomingMessage, ServerResponse } from 'node:http';
import { ApiError, requestTimeout, shuttingDown } from './errors.js';

export interface BodyDeadlineOptions {
  timeoutMs: number;
  /** Aborted when the drain's grace period is over. */
  shutdown: AbortSignal;
  /** Called once for each request this ends. */
  onEnded: (err: ApiError) => void;
}

/** Requests answered here; the error handler must not answer or count them again. */
export const answeredEarly = new WeakSet<IncomingMessage>();

export function enforceBodyDeadline(app: FastifyInstance, o: BodyDeadlineOptions): void {
  const waiting = new Map<IncomingMessage, { res: ServerResponse; stop: () => void }>();

  const end = (req: IncomingMessage, res: ServerResponse, err: ApiError) => {
    waiting.get(req)?.stop();
    answeredEarly.add(req);
    o.onEnded(err);
    const body = JSON.stringify(err.body());
    if (!res.headersSent) {
      res.writeHead(err.status, { ...err.headers, 'content-type': 'application/json; charset=utf-8', 'content-length': Buffer.byteLength(body), connection: 'close' });
    }
    // The rest of the body is never read: close the connection once the answer is out.
    res.end(body, () => req.socket.destroy());
  };

  app.addHook('onRequest', async (req, reply) => {
    const timer = setTimeout(() => end(req.raw, reply.raw, requestTimeout(o.timeoutMs)), o.timeoutMs);
    const stop = () => {
      clearTimeout(timer);
      waiting.delete(req.raw);
    };
    waiting.set(req.raw, { res: reply.raw, stop });
    reply.raw.once('close', stop);
  });

  app.addHook('preValidation', async (req) => {
    waiting.get(req.raw)?.stop();
  });

  o.shutdown.addEventListener('abort', () => {
    for (const [req, { res }] of [...waiting]) end(req, res, shuttingDown());
  }, { once: true });
}
