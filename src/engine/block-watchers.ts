// The main thread's side of the prefix cache's block events: each watcher gets a snapshot of the cached
// keys and then every change after it. The worker sends a snapshot only after every event it already
// sent (see engine-worker.ts), so a watcher ignores what arrives between asking and the snapshot: the
// snapshot includes it.
import type { BlockEvents, BlockSnapshot } from './block-events.js';

/** A running watch: the snapshot it started from; stop() ends the events. */
export interface BlockWatch extends BlockSnapshot {
  stop(): void;
}

export type BlockListener = (events: BlockEvents) => void;

interface Watcher {
  listener: BlockListener;
  onEnd: ((e: Error) => void) | undefined;
  /** False until its snapshot arrived. */
  live: boolean;
}

export class BlockWatchers {
  private readonly watchers = new Set<Watcher>();
  private readonly waiting = new Map<number, { watcher: Watcher; resolve: (w: BlockWatch | undefined) => void; reject: (e: Error) => void }>();
  private nextTicket = 1;

  /** `ask(ticket)` requests a snapshot from the worker. */
  constructor(private readonly ask: (ticket: number) => void) {}

  /** Resolves with the snapshot once it is in (undefined, and no events, without a prefix cache). */
  watch(listener: BlockListener, onEnd?: (e: Error) => void): Promise<BlockWatch | undefined> {
    const watcher: Watcher = { listener, onEnd, live: false };
    this.watchers.add(watcher);
    const ticket = this.nextTicket++;
    return new Promise((resolve, reject) => {
      this.waiting.set(ticket, { watcher, resolve, reject });
      this.ask(ticket);
    });
  }

  events(e: BlockEvents): void {
    for (const w of this.watchers) if (w.live) w.listener(e);
  }

  snapshot(ticket: number, snapshot: BlockSnapshot | null): void {
    const waiting = this.waiting.get(ticket);
    if (!waiting) return;
    this.waiting.delete(ticket);
    const { watcher } = waiting;
    if (!snapshot) {
      this.watchers.delete(watcher);
      waiting.resolve(undefined);
      return;
    }
    watcher.live = true;
    waiting.resolve({ ...snapshot, stop: () => this.watchers.delete(watcher) });
  }

  /** The engine stopped: pending watches fail, running ones are told and get nothing more. */
  failAll(e: Error): void {
    for (const w of this.waiting.values()) w.reject(e);
    this.waiting.clear();
    for (const w of this.watchers) if (w.live) w.onEnd?.(e);
    this.watchers.clear();
  }
}
