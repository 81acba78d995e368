// A Prometheus counter that follows a running total the engine keeps itself, read at scrape time: each
// scrape adds what the total grew by since the last one (per label set).
import type { Counter } from 'prom-client';

export class EngineTotal<L extends string = never> {
  private readonly seen = new Map<string, number>();

  constructor(private readonly counter: Counter<L>) {}

  follow(total: number, labels = {} as Record<L, string>): void {
    const key = JSON.stringify(labels);
    const seen = this.seen.get(key) ?? 0;
    // Also at 0, so that every series is there from the first scrape.
    this.counter.inc(labels, Math.max(0, total - seen));
    this.seen.set(key, Math.max(seen, total));
  }
}
