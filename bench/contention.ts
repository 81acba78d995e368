// How much of the machine other processes used while a benchmark ran: (all CPU time the kernel counted
// as busy − this process's own CPU time) / (wall time × cores), from /proc/stat and /proc/self/stat.
// On a shared machine a few percent of foreign load can halve a spin-waiting engine's speed, so reports
// record this per measurement, and runs can wait for the machine to go quiet first.
import { readFileSync } from 'node:fs';
import os from 'node:os';

interface Sample {
  busyTicks: number;
  ownTicks: number;
  ms: number;
}

function sample(): Sample | undefined {
  try {
    // cpu  user nice system idle iowait irq softirq steal ...
    const cpu = readFileSync('/proc/stat', 'utf8').split('\n')[0]!.trim().split(/\s+/).slice(1).map(Number);
    const busyTicks = cpu[0]! + cpu[1]! + cpu[2]! + cpu[5]! + cpu[6]! + cpu[7]!;
    // Fields after the ")" that ends the command name: utime and stime are the 12th and 13th.
    const self = readFileSync('/proc/self/stat', 'utf8');
    const rest = self.slice(self.lastIndexOf(')') + 2).split(' ').map(Number);
    return { busyTicks, ownTicks: rest[11]! + rest[12]!, ms: performance.now() };
  } catch {
    return undefined; // not Linux
  }
}

const TICKS_PER_SECOND = 100; // USER_HZ, 100 on every mainstream Linux build
const MIN_WINDOW_MS = 200;

/** Starts measuring; the returned function gives the fraction of all cores others used since (NaN if unknown or too short). */
export function startContention(): () => number {
  const a = sample();
  return () => {
    const b = sample();
    // Ticks are 10 ms: shorter windows would be mostly rounding.
    if (!a || !b || b.ms - a.ms < MIN_WINDOW_MS) return NaN;
    const foreign = (b.busyTicks - a.busyTicks) - (b.ownTicks - a.ownTicks);
    return Math.min(1, Math.max(0, foreign / TICKS_PER_SECOND / ((b.ms - a.ms) / 1000) / os.availableParallelism()));
  };
}

/**
 * Waits (up to `maxMs`) until other processes use less than `threshold` of the machine over a short
 * window; returns the last window's value.
 */
export async function waitForQuiet(maxMs: number, threshold = 0.05, windowMs = 500): Promise<number> {
  const deadline = performance.now() + maxMs;
  for (;;) {
    const stop = startContention();
    await new Promise((r) => setTimeout(r, windowMs));
    const c = stop();
    if (!(c >= threshold) || performance.now() >= deadline) return c;
  }
}
