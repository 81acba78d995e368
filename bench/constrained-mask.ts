// The mask's cost on its own: for each case (constrained-cases.ts), a JsonConstraint walks the case's
// document token by token on the model's tokenizer, and each step's allowed() is timed. The first
// constraint on a vocabulary also builds its tables (the byte trie, the plain text tokens); that is
// timed apart, as it happens once per process.
import { JsonConstraint } from '../src/constrained/json-constraint.js';
import type { Tokenizer } from '../src/model/tokenizer/index.js';
import type { MaskCase } from './constrained-cases.js';
import { median, percentile, round } from './stats.js';

export interface MaskCost {
  case: string;
  tokens: number;
  /** Per step, over every step of every repetition (ms). */
  p50Ms: number;
  p90Ms: number;
  maxMs: number;
  /** The mean over the document's steps (ms): what a whole reply pays per token. */
  meanMs: number;
}

/** The vocabulary tables' one-time cost, then every case's per-step cost over `reps` walks. */
export function measureMaskCost(tokenizer: Tokenizer, cases: readonly MaskCase[], reps: number): { tablesMs: number; costs: MaskCost[] } {
  const t0 = performance.now();
  // A string value's first step builds the tables; a free key's the rest.
  const warm = new JsonConstraint({ type: 'json_object' }, tokenizer, 64);
  for (const id of tokenizer.encode('{"a": "b')) {
    warm.allowed(64);
    warm.advance(id);
  }
  warm.allowed(64);
  const tablesMs = performance.now() - t0;

  const costs = cases.map((c) => {
    const ids = tokenizer.encode(c.document);
    if (tokenizer.decode(ids) !== c.document) throw new Error(`${c.name}: the document does not survive tokenization`);
    const budget = ids.length + 256;
    const steps: number[] = [];
    for (let r = 0; r < reps; r++) {
      const constraint = new JsonConstraint(c.format, tokenizer, budget);
      ids.forEach((id, i) => {
        const t = performance.now();
        const mask = constraint.allowed(budget - i);
        steps.push(performance.now() - t);
        if (!mask[id]) throw new Error(`${c.name}: the mask refused the document's own token ${i} (${JSON.stringify(tokenizer.decode([id]))})`);
        constraint.advance(id);
      });
    }
    return {
      case: c.name,
      tokens: ids.length,
      p50Ms: round(median(steps), 4),
      p90Ms: round(percentile(steps, 90), 4),
      maxMs: round(Math.max(...steps), 3),
      meanMs: round(steps.reduce((a, b) => a + b, 0) / steps.length, 4),
    };
  });
  return { tablesMs: round(tablesMs, 1), costs };
}
