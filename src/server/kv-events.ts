// GET /v1/kv/events: the prefix cache's blocks as a server-sent event stream, for a router that sends
// each request to the replica holding its prefix. The stream opens with `hello` (the keys cached now and
// the chain's parameters: fingerprint, block size, layout version) and goes on with `blocks` events
// ({stored, removed}) as the cache changes, so a subscriber's copy of the key set stays exact.
import type { FastifyReply } from 'fastify';
import type { BlockEvents } from '../engine/block-events.js';
import type { ServingEngine } from './engine-like.js';
import { ApiError, fromEngineError } from './errors.js';
import { SseWriter } from './sse.js';

/** Comment lines this often keep an idle stream open through proxies and show the subscriber it is alive. */
const PING_MS = 15_000;

export const prefixCacheOff = () =>
  new ApiError(404, 'This server runs without a prefix cache (--no-prefix-cache), so it has no block events to stream.', 'invalid_request_error', null, 'prefix_cache_off');

export class BlockEventStreams {
  private readonly open = new Set<SseWriter>();
  private closed = false;

  constructor(private readonly engine: ServingEngine) {}

  /**
   * Streams to the client until it leaves, the engine stops, or close() is called. Throws an ApiError
   * (prefixCacheOff() when there is nothing to stream) before the response is taken over.
   */
  async subscribe(reply: FastifyReply): Promise<void> {
    const watchBlocks = this.engine.watchBlocks?.bind(this.engine);
    if (!this.engine.info.prefixCache || !watchBlocks) throw prefixCacheOff();
    const res = reply.raw;
    const sse = new SseWriter(res);
    // Events that arrive before `hello` is written wait for it.
    let held: BlockEvents[] | undefined = [];
    const send = (e: BlockEvents) => sse.event('blocks', e);
    const watch = await watchBlocks((e) => (held ? held.push(e) : send(e)), () => sse.end()).catch((e: unknown) => {
      throw fromEngineError(e, {}, String(reply.request.id));
    });
    if (!watch) throw prefixCacheOff();
    reply.hijack();
    if (this.closed || res.destroyed) {
      watch.stop();
      res.end();
      return;
    }
    sse.open();
    const { stop, ...hello } = watch;
    sse.event('hello', hello);
    for (const e of held) send(e);
    held = undefined;
    this.open.add(sse);
    const ping = setInterval(() => sse.ping(), PING_MS);
    res.on('close', () => {
      clearInterval(ping);
      stop();
      this.open.delete(sse);
    });
  }

  /** Ends every stream (a drain must not wait on these endless responses). */
  close(): void {
    this.closed = true;
    for (const s of this.open) s.end();
    this.open.clear();
  }
}
