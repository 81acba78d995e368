// Server-sent events over a raw Node response: the OpenAI streaming format (`data: {json}` frames,
// ending with `data: [DONE]`) and the named events of the KV live feed.
import type { ServerResponse } from 'node:http';

export class SseWriter {
  constructor(private readonly res: ServerResponse) {}

  /** Sends the headers now, so the client sees the stream open before the first token. */
  open(extraHeaders: Record<string, string> = {}): void {
    this.res.writeHead(200, {
      'content-type': 'text/event-stream; charset=utf-8',
      'cache-control': 'no-cache, no-transform',
      connection: 'keep-alive',
      // Reverse proxies (nginx) would otherwise buffer the stream.
      'x-accel-buffering': 'no',
      ...extraHeaders,
    });
    this.res.flushHeaders();
  }

  /** True once the client has gone or the stream was ended. */
  get closed(): boolean {
    return this.res.destroyed || this.res.writableEnded;
  }

  data(payload: unknown): void {
    if (!this.closed) this.res.write(`data: ${JSON.stringify(payload)}\n\n`);
  }

  event(name: string, payload: unknown): void {
    if (!this.closed) this.res.write(`event: ${name}\ndata: ${JSON.stringify(payload)}\n\n`);
  }

  /** A comment line: keeps idle connections open through proxies. */
  ping(): void {
    if (!this.closed) this.res.write(': ping\n\n');
  }

  /** OpenAI's end-of-stream marker, then the end of the response. */
  done(): void {
    if (this.closed) return;
    this.res.write('data: [DONE]\n\n');
    this.res.end();
  }

  end(): void {
    if (!this.closed) this.res.end();
  }
}
