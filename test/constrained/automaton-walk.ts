// Random documents written byte by byte under the JSON automaton: at each step a byte of `alphabet` that
// keeps some reading alive and the rest within the byte budget, ending (where the document can) at random.
// A dead end (no byte fits while the document cannot end) fails the test that asked for the walk.
import assert from 'node:assert/strict';
import { canEnd, cost, initialState, stepAll, type JsonState } from '../../src/constrained/json-automaton.js';
import type { Schema } from '../../src/constrained/json-schema.js';
import type { Rng } from '../../src/engine/rng.js';

export function walkDocument(schema: Schema, alphabet: readonly number[], rng: Rng, budget: number): string {
  const out: number[] = [];
  let states: JsonState[] = [initialState(schema)];
  for (let left = budget; ; left--) {
    const ending = states.some(canEnd);
    const options: [number, JsonState[]][] = [];
    for (const b of alphabet) {
      const next = stepAll(states, b);
      if (next.length > 0 && Math.min(...next.map(cost)) <= left - 1) options.push([b, next]);
    }
    if (ending && (options.length === 0 || rng.next() < 0.1)) break;
    assert.ok(options.length > 0, `dead end after ${JSON.stringify(new TextDecoder().decode(new Uint8Array(out)))} with ${left} bytes left`);
    const [b, next] = options[Math.floor(rng.next() * options.length)]!;
    out.push(b);
    states = next;
  }
  // Fatal: a walk that wrote broken UTF-8 inside a string is the automaton's fault.
  return new TextDecoder('utf-8', { fatal: true }).decode(new Uint8Array(out));
}
