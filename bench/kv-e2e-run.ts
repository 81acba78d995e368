// What one end-to-end decode run of the KV-format benchmark is given and gives back, whichever engine
// runs it: a batch of prompts computed together, then a fixed number of greedy tokens per sequence, with
// the time each token arrived.
import type { KVType } from '../src/kv/format.js';

export interface DecodeRunSpec {
  /** Token ids, BOS first; each becomes one sequence and all run at once. */
  prompts: readonly (readonly number[])[];
  /** Tokens each sequence generates (end-of-generation tokens do not stop it). */
  decodeTokens: number;
  type: KVType;
  threads: number;
}

export interface DecodeRunTimes {
  /** When the prompts were sent (performance.now()). */
  startMs: number;
  /** Per sequence, the arrival time of each generated token. */
  times: number[][];
  /** The engine's configuration as it reported it. */
  details: Record<string, string | number | boolean>;
}

/** Context per sequence that holds the longest prompt and its generated tokens. */
export function contextFor(spec: DecodeRunSpec): number {
  return Math.max(...spec.prompts.map((p) => p.length)) + spec.decodeTokens;
}
