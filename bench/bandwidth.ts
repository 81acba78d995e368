// The machine's memory read bandwidth, measured in the same run as the benchmarks it bounds: decode of
// a weight-bound model cannot beat bandwidth / bytes read per token. Uses the native addon's
// measurement when the addon provides one; otherwise a JS fallback (worker threads summing a shared
// buffer), which is labelled as such in reports because JIT-compiled loads may fall short of what
// SIMD code reaches, so its limit can be an underestimate.
import { Worker } from 'node:worker_threads';
import { startContention } from './contention.js';
import { nativeReadBandwidth } from './native-addon.js';

export interface BandwidthPoint {
  threads: number;
  gbPerS: number;
  /** Share of the CPUs other processes used meanwhile (they can only lower the result). */
  otherLoad: number;
}

export interface BandwidthMeasurement {
  source: 'native' | 'js-fallback';
  bufferBytes: number;
  points: BandwidthPoint[];
  best: BandwidthPoint;
}

const DEFAULT_BYTES = 1 << 30; // far larger than any last-level cache

export async function measureReadBandwidth(threadCounts: readonly number[], bytes = DEFAULT_BYTES, passes = 3): Promise<BandwidthMeasurement> {
  const native = await nativeReadBandwidth();
  const points: BandwidthPoint[] = [];
  for (const threads of threadCounts) {
    const contention = startContention();
    const gbPerS = native ? native(bytes, threads) : await jsReadBandwidth(bytes, threads, passes);
    points.push({ threads, gbPerS, otherLoad: contention() });
  }
  return { source: native ? 'native' : 'js-fallback', bufferBytes: bytes, points, best: fastest(points) };
}

/** Best of `passes` timed passes of `threads` workers each summing its share of one shared buffer. */
async function jsReadBandwidth(bytes: number, threads: number, passes: number): Promise<number> {
  const buffer = new SharedArrayBuffer(bytes);
  new Float64Array(buffer).fill(1); // touch every page so the pass reads memory, not the zero page
  const control = new SharedArrayBuffer(4);
  const counter = new Int32Array(control);
  const n = bytes / 8;
  const workers = Array.from({ length: threads }, (_, i) =>
    new Worker(new URL('./bandwidth-worker.js', import.meta.url), {
      workerData: { buffer, control, start: Math.floor((n * i) / threads), end: Math.floor((n * (i + 1)) / threads) },
    }));
  const nextMessage = (w: Worker) => new Promise<{ ms?: number }>((resolve, reject) => {
    w.once('message', resolve);
    w.once('error', reject);
  });
  try {
    await Promise.all(workers.map(nextMessage)); // all ready
    let best = 0;
    for (let p = 0; p <= passes; p++) {
      const done = Promise.all(workers.map(nextMessage));
      Atomics.add(counter, 0, 1);
      Atomics.notify(counter, 0);
      const slowest = Math.max(...(await done).map((m) => m.ms ?? Infinity));
      if (p > 0) best = Math.max(best, bytes / (slowest / 1000) / 1e9); // pass 0 warms the JIT
    }
    return best;
  } finally {
    Atomics.store(counter, 0, -1);
    Atomics.notify(counter, 0);
    await Promise.all(workers.map((w) => w.terminate()));
  }
}

/** Per thread count, the higher of two measurements of the same kind. */
export function bestBandwidth(a: BandwidthMeasurement, b: BandwidthMeasurement): BandwidthMeasurement {
  const points = a.points.map((p) => {
    const q = b.points.find((x) => x.threads === p.threads);
    return q && q.gbPerS > p.gbPerS ? q : p;
  });
  return { ...a, points, best: fastest(points) };
}

function fastest(points: readonly BandwidthPoint[]): BandwidthPoint {
  return points.reduce((x, y) => (y.gbPerS > x.gbPerS ? y : x));
}
