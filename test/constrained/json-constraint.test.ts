// The response_format mask against its definition, token by token: a token is allowed when its bytes
// keep some reading alive and the rest of the document still fits the budget after it; an
// end-of-generation token when the document can end. Checked on a 32K-token vocabulary (llama.cpp's
// llama-spm fixture) along documents that spend long stretches in strings and free keys, where the mask
// takes plain text tokens without walking the trie, and with budgets tight enough to cut them off.
import assert from 'node:assert/strict';
import { join } from 'node:path';
import { test } from 'node:test';
import { canEnd, cost, initialState, stepAll, type JsonState } from '../../src/constrained/json-automaton.js';
import { JsonConstraint } from '../../src/constrained/json-constraint.js';
import { compileResponseFormat, type ResponseFormat } from '../../src/constrained/json-schema.js';
import { vocabularyOf } from '../../src/constrained/vocabulary-trie.js';
import { GGUFFile } from '../../src/model/gguf/reader.js';
import { createTokenizer } from '../../src/model/tokenizer/index.js';

const file = GGUFFile.open(join(import.meta.dirname, '../../../test/fixtures/vocab/ggml-vocab-llama-spm.gguf'));
const tokenizer = createTokenizer(file);
const vocab = vocabularyOf(tokenizer);

/** The mask by its definition: every token tried on its own. */
function definedMask(states: readonly JsonState[], left: number): Uint8Array {
  const mask = new Uint8Array(tokenizer.vocabSize);
  let any = false;
  vocab.bytes.forEach((piece, id) => {
    if (piece.length === 0) return;
    let next: readonly JsonState[] = states;
    for (const b of piece) {
      next = stepAll(next, b);
      if (next.length === 0) return;
    }
    if (next.some((st) => cost(st) <= left - 1)) mask[id] = 1, any = true;
  });
  if (states.some(canEnd) || !any) vocab.eog.forEach((e, id) => { if (e) mask[id] = 1; });
  return mask;
}

const differences = (a: Uint8Array, b: Uint8Array) => {
  const out: number[] = [];
  for (let i = 0; i < a.length; i++) if (a[i] !== b[i]) out.push(i);
  return out;
};

const cases: [string, ResponseFormat, string][] = [
  ['json_object', { type: 'json_object' }, '{"title": "A long walk", "notes": "Lily ran to the park, café and all \\"fast\\".", "tags": ["a", "b c"], "n": 3}'],
  ['a schema', {
    type: 'json_schema',
    schema: { type: 'object', properties: { name: { type: 'string' }, bio: { type: 'string' }, short: { type: 'string', maxLength: 8 }, extra: { type: 'object' } }, required: ['name', 'bio', 'short', 'extra'], additionalProperties: false },
  }, '{"name": "Tom Smith", "bio": "He likes trains, naïve art and \\u00e9clairs.", "short": "abc", "extra": {"free key here": "value"}}'],
];

for (const [name, format, document] of cases) {
  test(`${name}: at every step of a document, the mask is exactly the tokens that fit, with a roomy budget and with tight ones`, () => {
    const ids = tokenizer.encode(document);
    assert.equal(tokenizer.decode(ids), document);
    // The mask counts a byte as a token at worst. The least budget that lets the whole document
    // through: after its token i, the i + 1 tokens spent and the bytes still needed to close.
    let least = 0;
    let after: JsonState[] = [initialState(compileResponseFormat(format))];
    ids.forEach((id, i) => {
      for (const b of vocab.bytes[id]!) after = stepAll(after, b);
      least = Math.max(least, i + 1 + Math.min(...after.map(cost)));
    });
    for (const budget of [least + 100, least, least - 1, least - 8]) {
      const c = new JsonConstraint(format, tokenizer, budget);
      let states: JsonState[] = [initialState(compileResponseFormat(format))];
      for (let i = 0; i < ids.length; i++) {
        const left = budget - i;
        const got = c.allowed(left);
        const diff = differences(got, definedMask(states, left));
        assert.deepEqual(diff.slice(0, 5), [], `budget ${budget}, step ${i} (before ${JSON.stringify(tokenizer.decode([ids[i]!]))}): ${diff.length} tokens differ`);
        if (!got[ids[i]!]) {
          assert.ok(budget < least, `the document's own token at step ${i}, with a budget of ${budget} >= ${least}`);
          break;
        }
        if (i === ids.length - 1) assert.ok(budget >= least, `a budget of ${budget} < ${least} let the whole document through`);
        c.advance(ids[i]!);
        for (const b of vocab.bytes[ids[i]!]!) states = stepAll(states, b);
      }
    }
  });
}
