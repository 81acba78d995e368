// Decode throughput of a batch of sequences from the times their tokens arrived, counting only the
// window in which every sequence was decoding: from the moment the last one got its first token (all
// prompts computed) to the moment the first one got its last. Prefill, and the ragged start and end
// where fewer sequences share a step, stay out of the figure.
import { median, round } from './stats.js';

export interface DecodeWindow {
  /** Generated tokens that arrived inside the window, over its length. */
  tokS: number;
  tokens: number;
  seconds: number;
  /** Median gap between two tokens of one sequence inside the window (one step). */
  stepMs: number;
  /**
   * Tokens per burst of arrivals inside the window (arrivals less than a quarter step apart are one
   * burst): the number of sequences when they decode in lockstep, one token each per step; fewer when
   * an engine's steps carry only some of them.
   */
  meanBurst: number;
  /** From the start of the run to the window's start: the prompts' time. */
  prefillS: number;
}

/**
 * `times[i]` holds sequence i's token arrival times (ms, performance.now() clock, ascending), the first
 * being its first generated token; `startMs` is when the prompts were sent.
 */
export function decodeWindow(times: readonly (readonly number[])[], startMs: number): DecodeWindow {
  if (times.some((t) => t.length < 2)) throw new Error('decode window: every sequence needs at least two tokens');
  const from = Math.max(...times.map((t) => t[0]!));
  const to = Math.min(...times.map((t) => t[t.length - 1]!));
  const seconds = (to - from) / 1000;
  // Tokens that arrive together (one message carrying several steps' tokens when steps are quicker
  // than the thread that receives them) are no step apart: only positive gaps measure a step.
  const stepMs = median(times.flatMap((t) => t.slice(1).map((x, i) => x - t[i]!).filter((gap, i) => gap > 0 && t[i]! >= from && t[i + 1]! <= to)));
  if (!(seconds > 0) || !(stepMs > 0)) throw new Error('decode window: no step in which every sequence was decoding (generate more tokens)');
  // Tokens of one step arrive a little apart: a burst that ends the window counts whole, one that starts it not at all.
  const slack = stepMs / 4;
  const inside = times.map((t) => t.filter((x) => x > from + slack && x <= to + slack));
  const tokens = inside.reduce((n, t) => n + t.length, 0);
  const arrivals = inside.flat().sort((a, b) => a - b);
  const bursts = arrivals.filter((x, i) => i === 0 || x - arrivals[i - 1]! > stepMs / 4).length;
  return { tokS: round(tokens / seconds), tokens, seconds: round(seconds), stepMs: round(stepMs), meanBurst: round(tokens / bursts), prefillS: round((from - startMs) / 1000) };
}
