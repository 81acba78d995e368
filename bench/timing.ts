// Timing one operation: a warm-up call, then repeated calls until both a minimum count and a minimum
// total time are reached; the median call time is what reports use (robust to a stray slow call).
// `prepare` runs untimed before each call (e.g. evicting caches so the call reads from memory).
import { median } from './stats.js';

export interface Timing {
  medianMs: number;
  calls: number;
}

export function timeOp(op: () => void, minCalls = 3, minMs = 200, prepare?: () => void): Timing {
  prepare?.();
  op();
  const times: number[] = [];
  const start = performance.now();
  while (times.length < minCalls || performance.now() - start < minMs) {
    prepare?.();
    const t0 = performance.now();
    op();
    times.push(performance.now() - t0);
    if (times.length >= 1000) break;
  }
  return { medianMs: median(times), calls: times.length };
}

let evictBuffer: Float64Array | undefined;
let evictSink = 0;

/** Reads 256 MiB (several times any last-level cache) so that what a timed call reads next comes from memory. */
export function evictCaches(): void {
  evictBuffer ??= new Float64Array(32 << 20).fill(1);
  let s = 0;
  for (let i = 0; i < evictBuffer.length; i += 8) s += evictBuffer[i]!; // one load per 64-byte line
  evictSink += s;
}
