// How many generation requests the server holds at once (running + waiting in the engine). Past the
// limit a request is turned away with 429 + Retry-After instead of queueing without bound; while
// draining for shutdown, with 503.
import { queueFull, shuttingDown } from './errors.js';

export class Admission {
  private inflight = 0;
  private draining = false;
  private idleWaiters: (() => void)[] = [];

  constructor(readonly limit: number, private readonly retryAfterS = 1) {}

  get count(): number {
    return this.inflight;
  }

  get isDraining(): boolean {
    return this.draining;
  }

  /** Takes a place or throws the ApiError the client should get; call leave() exactly once after. */
  enter(): void {
    if (this.draining) throw shuttingDown();
    if (this.inflight >= this.limit) throw queueFull(this.retryAfterS);
    this.inflight++;
  }

  leave(): void {
    this.inflight--;
    if (this.inflight === 0) for (const w of this.idleWaiters.splice(0)) w();
  }

  /** Refuses new requests from now on; resolves when the ones in flight have finished. */
  drain(): Promise<void> {
    this.draining = true;
    if (this.inflight === 0) return Promise.resolve();
    return new Promise((resolve) => this.idleWaiters.push(resolve));
  }
}
