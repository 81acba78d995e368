// The main thread's side of one request: an async iterable fed with the deltas the worker sends. It
// ends after the deltas that carry finish_reason (one per choice when n > 1), or throws the request's error. Leaving the loop
// early (break, return, throw) aborts the request so its KV is freed.
import type { EngineDelta } from './engine-types.js';

export class RequestStream implements AsyncIterableIterator<EngineDelta> {
  private readonly queue: EngineDelta[] = [];
  private error: Error | undefined;
  private ended = false;
  private wake: (() => void) | undefined;
  /** Called once when the stream ends, however it ends. */
  onEnd: (() => void) | undefined;

  private open: number;

  constructor(readonly id: number, private readonly onAbandon: (id: number) => void, choices = 1) {
    this.open = choices;
  }

  /** True once the final delta or an error has arrived. */
  get done(): boolean {
    return this.ended;
  }

  push(delta: EngineDelta): void {
    if (this.ended) return;
    this.queue.push(delta);
    if (delta.finish_reason && --this.open <= 0) this.end();
    this.wakeReader();
  }

  fail(error: Error): void {
    if (this.ended) return;
    this.error = error;
    this.end();
    this.wakeReader();
  }

  async next(): Promise<IteratorResult<EngineDelta>> {
    while (this.queue.length === 0 && !this.ended) await new Promise<void>((r) => (this.wake = r));
    const delta = this.queue.shift();
    if (delta) return { value: delta, done: false };
    if (this.error) {
      const e = this.error;
      this.error = undefined;
      throw e;
    }
    return { value: undefined, done: true };
  }

  async return(): Promise<IteratorResult<EngineDelta>> {
    if (!this.ended) {
      this.end();
      this.onAbandon(this.id);
    }
    this.queue.length = 0;
    return { value: undefined, done: true };
  }

  [Symbol.asyncIterator](): this {
    return this;
  }

  private end(): void {
    this.ended = true;
    this.onEnd?.();
    this.onEnd = undefined;
  }

  private wakeReader(): void {
    const w = this.wake;
    this.wake = undefined;
    w?.();
  }
}
