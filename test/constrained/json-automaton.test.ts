// The JSON recogniser against JSON.parse: every prefix of a valid document stays alive and the whole
// can end; a mutated text survives to the end exactly when JSON.parse accepts it. And its cost is
// honest: from any prefix of a document, the cost never exceeds the bytes that actually completed it.
import assert from 'node:assert/strict';
import { test } from 'node:test';
import { canEnd, cost, initialState, stepAll, type JsonState } from '../../src/constrained/json-automaton.js';
import { compileResponseFormat } from '../../src/constrained/json-schema.js';
import { Rng } from '../../src/engine/rng.js';

const ANY = compileResponseFormat({ type: 'json_schema', schema: {} });
const bytesOf = (s: string) => new TextEncoder().encode(s);

function run(text: string, states: JsonState[] = [initialState(ANY)]): JsonState[] {
  for (const b of bytesOf(text)) {
    states = stepAll(states, b);
    if (states.length === 0) break;
  }
  return states;
}

function randomValue(rng: Rng, depth: number): unknown {
  const r = rng.next();
  if (depth > 3 || r < 0.3) {
    const k = Math.floor(rng.next() * 6);
    return [() => Math.floor(rng.next() * 2000) - 1000, () => rng.next() * 1e3, () => 'é"\\\n ☃ x'.slice(0, Math.floor(rng.next() * 8)), () => true, () => false, () => null][k]!();
  }
  if (r < 0.65) return Array.from({ length: Math.floor(rng.next() * 4) }, () => randomValue(rng, depth + 1));
  return Object.fromEntries(Array.from({ length: Math.floor(rng.next() * 4) }, (_, i) => [`k${i}`, randomValue(rng, depth + 1)]));
}

test('valid documents: every prefix stays alive, the whole can end, and cost never overstates what is left', () => {
  const rng = new Rng(11);
  for (let i = 0; i < 300; i++) {
    const text = JSON.stringify(randomValue(rng, 0));
    const bytes = bytesOf(text);
    let states = [initialState(ANY)];
    for (let k = 0; k < bytes.length; k++) {
      assert.ok(Math.min(...states.map(cost)) <= bytes.length - k, `cost at ${k} of ${text}`);
      states = stepAll(states, bytes[k]!);
      assert.ok(states.length > 0, `${text} died at byte ${k}`);
    }
    assert.ok(states.some(canEnd), `${text} cannot end`);
  }
});

test('mutated documents are accepted exactly when JSON.parse accepts them', () => {
  const rng = new Rng(5);
  const alphabet = '{}[]",:0-1.eE+ tfnu\\ax';
  let checked = 0;
  for (let i = 0; i < 1500; i++) {
    const chars = [...JSON.stringify(randomValue(rng, 1))];
    const at = Math.floor(rng.next() * (chars.length + 1));
    const op = Math.floor(rng.next() * 3);
    const c = alphabet[Math.floor(rng.next() * alphabet.length)]!;
    if (op === 0) chars.splice(at, 1);
    else if (op === 1) chars.splice(at, 0, c);
    else chars.splice(at, 1, c);
    const text = chars.join('');
    // The recogniser caps blanks in a row and takes no blank around the top-level value's end.
    if (/\s\s\s/.test(text) || text !== text.trim()) continue;
    let valid = true;
    try {
      JSON.parse(text);
    } catch {
      valid = false;
    }
    assert.equal(run(text).some(canEnd), valid, text);
    checked++;
  }
  assert.ok(checked > 1000);
});

test('enum values are matched byte by byte, non-ASCII ones included', () => {
  const schema = compileResponseFormat({ type: 'json_schema', schema: { enum: ['é', 'ü2', 1, 10, null] } });
  for (const ok of ['"é"', '"ü2"', '1', '10', 'null']) assert.ok(run(ok, [initialState(schema)]).some(canEnd), ok);
  for (const bad of ['"e"', '"ü"', '2', '100', '"é"x']) assert.ok(!run(bad, [initialState(schema)]).some(canEnd), bad);
});

test('blanks between tokens are capped, blanks inside strings and keys are not', () => {
  assert.ok(run('{"a   b": "x    y"}').some(canEnd));
  assert.ok(run('[1,  2]').some(canEnd));
  assert.equal(run('[1,   2]').length, 0);
});

test('a response format the engine does not know is a request fault naming response_format', () => {
  assert.throws(() => compileResponseFormat({ type: 'yaml' } as never), { kind: 'request', param: 'response_format' });
});
