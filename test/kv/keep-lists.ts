// Test helpers: keep lists for compact(), as eviction policies build them.
import { makeRng } from './rng.js';

type Rng = ReturnType<typeof makeRng>;

/** `kept` of positions 0..tokens-1 chosen at random, ascending. */
export function ascendingKeep(rng: Rng, tokens: number, kept: number): Int32Array {
  const all = Array.from({ length: tokens }, (_, i) => i);
  for (let i = all.length - 1; i > 0; i--) {
    const j = rng.int(i + 1);
    [all[i], all[j]] = [all[j]!, all[i]!];
  }
  return Int32Array.from(all.slice(0, kept).sort((a, b) => a - b));
}

/**
 * The same kind of choice, but as a policy that drops a few rows writes it: kept rows below `kept` stay
 * put, and the kept rows past it fill the holes in random order (keep[i] >= i, not ascending).
 */
export function holeFillingKeep(rng: Rng, tokens: number, kept: number): Int32Array {
  return fillHoles(rng, ascendingKeep(rng, tokens, kept));
}

/** Rewrites an ascending choice as hole filling: identity where a row is kept, tail rows in the holes. */
export function fillHoles(rng: Rng, chosen: Int32Array): Int32Array {
  const kept = chosen.length;
  const isKept = new Set(chosen);
  const tail = Array.from(chosen).filter((p) => p >= kept);
  for (let i = tail.length - 1; i > 0; i--) {
    const j = rng.int(i + 1);
    [tail[i], tail[j]] = [tail[j]!, tail[i]!];
  }
  return Int32Array.from({ length: kept }, (_, i) => (isKept.has(i) ? i : tail.pop()!));
}
