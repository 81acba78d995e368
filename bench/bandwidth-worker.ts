// Worker half of the JS read-bandwidth fallback: sums its share of a shared buffer each time the
// main thread bumps the start counter, and reports how long the pass took.
import { parentPort, workerData } from 'node:worker_threads';

interface Job {
  buffer: SharedArrayBuffer;
  start: number; // in float64 elements
  end: number;
  control: SharedArrayBuffer; // Int32Array [passCounter]
}

const job = workerData as Job;
const data = new Float64Array(job.buffer);
const control = new Int32Array(job.control);

function sum(from: number, to: number): number {
  // Four accumulators so the adds do not form one long dependency chain.
  let a = 0, b = 0, c = 0, d = 0;
  let i = from;
  for (; i + 4 <= to; i += 4) {
    a += data[i]!;
    b += data[i + 1]!;
    c += data[i + 2]!;
    d += data[i + 3]!;
  }
  for (; i < to; i++) a += data[i]!;
  return a + b + c + d;
}

let seen = 0;
parentPort!.postMessage({ ready: true });
for (;;) {
  Atomics.wait(control, 0, seen);
  seen = Atomics.load(control, 0);
  if (seen < 0) break;
  const t0 = performance.now();
  const s = sum(job.start, job.end);
  parentPort!.postMessage({ ms: performance.now() - t0, sum: s });
}
