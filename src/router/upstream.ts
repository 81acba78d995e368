// One HTTP request to a replica, resolved when its response headers arrive. node:http rather than fetch:
// fetch gives up on a response whose headers take more than five minutes, and a replica sends its
// headers only with the first token (or, unstreamed, the whole answer), which a long queue or a long
// generation may well delay that much. A fresh connection per request: a pooled one the replica has
// just closed would fail like a dead replica.
import { request as httpRequest, type IncomingMessage, type OutgoingHttpHeaders } from 'node:http';
import { request as httpsRequest } from 'node:https';

export interface UpstreamRequest {
  method: 'GET' | 'POST';
  headers: OutgoingHttpHeaders;
  body?: string;
  /** Aborting it (the client left) destroys the request, before or after the response began. */
  signal: AbortSignal;
}

/** Resolves with the response once its headers are in; rejects when the replica cannot be reached or fails first. */
export function upstream(url: string, r: UpstreamRequest): Promise<IncomingMessage> {
  const target = new URL(url);
  const send = target.protocol === 'https:' ? httpsRequest : httpRequest;
  return new Promise((resolve, reject) => {
    const req = send(target, { method: r.method, headers: r.headers, agent: false, signal: r.signal }, resolve);
    req.on('error', reject);
    req.end(r.body);
  });
}

/** A response body as text; rejects when the replica breaks off before its end. */
export async function readText(res: IncomingMessage): Promise<string> {
  const chunks: Buffer[] = [];
  for await (const chunk of res) chunks.push(chunk as Buffer);
  return Buffer.concat(chunks).toString('utf8');
}
