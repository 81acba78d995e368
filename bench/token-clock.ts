// Timing a streamed request as its caller sees it: time to the first token from the moment the request
// was sent, and the time between each later token and the one before; and the latency percentiles and
// throughput of a whole run of such requests.
import { percentile, round } from './stats.js';

export class TokenClock {
  ttftMs: number | undefined;
  readonly tbtMs: number[] = [];
  tokens = 0;
  lastAt: number | undefined;

  constructor(readonly sentAt: number = performance.now()) {}

  /** `count` tokens arrived now (a delta may carry several). */
  tick(count = 1, now = performance.now()): void {
    if (count <= 0) return;
    if (this.lastAt === undefined) this.ttftMs = now - this.sentAt;
    else this.tbtMs.push(now - this.lastAt);
    this.lastAt = now;
    this.tokens += count;
  }
}

export interface LatencySummary {
  outputTokens: number;
  /** From the first request sent to the last token received. */
  wallS: number;
  outputTokS: number;
  ttftMs: { p50: number; p99: number };
  tbtMs: { p50: number; p99: number };
}

export function summarizeClocks(clocks: readonly TokenClock[]): LatencySummary {
  const start = Math.min(...clocks.map((c) => c.sentAt));
  const end = Math.max(...clocks.map((c) => c.lastAt ?? c.sentAt));
  const outputTokens = clocks.reduce((n, c) => n + c.tokens, 0);
  const ttft = clocks.flatMap((c) => (c.ttftMs === undefined ? [] : [c.ttftMs]));
  const tbt = clocks.flatMap((c) => c.tbtMs);
  const wallS = (end - start) / 1000;
  return {
    outputTokens,
    wallS: round(wallS),
    outputTokS: round(outputTokens / wallS),
    ttftMs: { p50: round(percentile(ttft, 50)), p99: round(percentile(ttft, 99)) },
    tbtMs: { p50: round(percentile(tbt, 50)), p99: round(percentile(tbt, 99)) },
  };
}

export const sleepUntil = (t: number) => new Promise((r) => setTimeout(r, Math.max(0, t - performance.now())));
