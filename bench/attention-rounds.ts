// Timing one attention batch over several caches that should be compared (layouts, formats), in rounds:
// each round times every cache for a short while, back to back, in an order that rotates from round to
// round. Comparisons are then taken within a round, so a change in this host's memory bandwidth or load
// between rounds (which moves whole rounds by 10-20%) does not leak into them.
import type { AttentionShape, Backend, KVView } from '../src/backend/backend.js';
import { evictCaches, timeOp } from './timing.js';

/** Fills `a` with a cheap repeating pseudo-random pattern in [-0.25, 0.25) (values do not change the speed, only need to be finite). */
export function fillFloats(a: Float32Array, seed: number): void {
  const pattern = new Float32Array(Math.min(a.length, 1 << 16));
  let s = seed >>> 0;
  for (let i = 0; i < pattern.length; i++) {
    s = (Math.imul(s, 1664525) + 1013904223) >>> 0;
    pattern[i] = (s / 2 ** 32 - 0.5) * 0.5;
  }
  for (let at = 0; at < a.length; at += pattern.length) a.set(pattern.subarray(0, Math.min(pattern.length, a.length - at)), at);
}

/**
 * Times attention for the tokens (slots, positions) on every cache in `caches`, `rounds` times; returns
 * each round's median call time per cache ([round][cache], ms). `cold` evicts the CPU caches before every
 * call, so the KV is read from memory as in a model step.
 */
export function timeInRounds(backend: Backend, caches: readonly KVView[], slots: Int32Array, positions: Int32Array, s: AttentionShape, minCalls: number, cold: boolean, rounds: number): number[][] {
  const q = new Float32Array(slots.length * s.nHeads * s.headDim);
  fillFloats(q, 3);
  const out = new Float32Array(q.length);
  const results: number[][] = [];
  for (let round = 0; round < rounds; round++) {
    const times = caches.map(() => 0);
    for (let j = 0; j < caches.length; j++) {
      const i = (j + round) % caches.length;
      times[i] = timeOp(() => backend.attention(out, q, caches[i]!, 0, slots, positions, s), minCalls, 60, cold ? evictCaches : undefined).medianMs;
    }
    results.push(times);
  }
  return results;
}
