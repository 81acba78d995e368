// Timing one operation: a warm-up call, then repeated calls until both a minimum count and a minimum
// total time are reached; the median call time is what reports use (robust to a stray slow call).
import { median } from './stats.js';

export interface Timing {
  medianMs: number;
  calls: number;
}

export function timeOp(op: () => void, minCalls = 3, minMs = 200): Timing {
  op();
  const times: number[] = [];
  const start = performance.now();
  while (times.length < minCalls || performance.now() - start < minMs) {
    const t0 = performance.now();
    op();
    times.push(performance.now() - t0);
    if (times.length >= 1000) break;
  }
  return { medianMs: median(times), calls: times.length };
}
