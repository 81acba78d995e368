// minimum, maximum, exclusiveMinimum and exclusiveMaximum on "number", held to the independent validator
// (schema-validator.ts), which reads each text with JSON.parse as a client would:
// - exhaustively over number texts of up to four characters: a text ends exactly when it reads as a value
//   in range, and a prefix lives exactly when some continuation does, its cost being the shortest one's;
// - texts at the bounds' rounding edges (the bound, its neighbouring doubles, the midpoints between them
//   and just either side, written out in full) are accepted exactly when they read as a value in range;
// - random walks under bounded schemas never dead-end, fit their budget, write no exponent and satisfy
//   the schema; texts near them are accepted exactly when they parse and satisfy it.
import assert from 'node:assert/strict';
import { test } from 'node:test';
import { canEnd, cost, initialState, stepAll, type JsonState } from '../../src/constrained/json-automaton.js';
import { compileResponseFormat, type Schema } from '../../src/constrained/json-schema.js';
import { exactValue, midpoint, nextDown, nextUp, type Decimal } from '../../src/constrained/exact-decimal.js';
import { Rng } from '../../src/engine/rng.js';
import { satisfies } from './schema-validator.js';
import { walkDocument } from './automaton-walk.js';

const compile = (schema: unknown) => compileResponseFormat({ type: 'json_schema', schema, strict: true });
const bytesOf = (s: string) => new TextEncoder().encode(s);
const least = (states: readonly JsonState[]) => Math.min(...states.map(cost));

function run(schema: Schema, text: string): JsonState[] {
  let states: JsonState[] = [initialState(schema)];
  for (const b of bytesOf(text)) {
    states = stepAll(states, b);
    if (states.length === 0) break;
  }
  return states;
}

const accepts = (schema: Schema, text: string) => run(schema, text).some(canEnd);

/** What a client decides: the text parses, and the value it reads satisfies the schema. */
function valid(raw: object, text: string): boolean {
  try {
    return satisfies(JSON.parse(text), raw, true);
  } catch {
    return false;
  }
}

/** Bounds of every kind: both sides, one side, inclusive and exclusive, across zero, at zero, inexact decimals. */
function boundCombinations(): object[] {
  const out: object[] = [];
  const lows = [undefined, -10, -0.5, -0, 0, 0.1, 0.25, 1, 2.5, 99.9];
  const highs = [undefined, -0.05, 0, 0.3, 1, 7.75, 100];
  let i = 0;
  for (const lo of lows) {
    for (const hi of highs) {
      if (lo === undefined && hi === undefined) continue;
      if (lo !== undefined && hi !== undefined && !(lo < hi)) continue;
      // Each pair under two of the four inclusive/exclusive choices, alternating.
      for (const pick of [i % 4, (i + 2) % 4]) {
        out.push({
          type: 'number',
          ...(lo !== undefined && { [pick & 1 ? 'exclusiveMinimum' : 'minimum']: lo }),
          ...(hi !== undefined && { [pick & 2 ? 'exclusiveMaximum' : 'maximum']: hi }),
        });
      }
      i++;
    }
  }
  return out;
}

test('numbers of up to four characters: a text ends exactly when it reads as a value in range; a prefix lives exactly when a continuation does, at its cost', () => {
  const HORIZON = 4;
  const PREFIX = /^-?((0|[1-9]\d*)(\.\d*)?)?$/;
  const NUMBER = /^-?(0|[1-9]\d*)(\.\d+)?$/;
  const alphabet = [...'-0123456789.'];
  let checked = 0;
  for (const raw of boundCombinations()) {
    const schema = compile(raw);
    // Depth first over every number prefix within the horizon; returns the fewest characters that
    // complete `text` into a valid number within the horizon (Infinity when none does).
    const visit = (text: string, states: JsonState[]): number => {
      let shortest = NUMBER.test(text) && valid(raw, text) ? 0 : Infinity;
      if (NUMBER.test(text)) assert.equal(states.some(canEnd), shortest === 0, `${text} under ${JSON.stringify(raw)}`);
      if (text.length < HORIZON) {
        for (const c of alphabet) {
          if (!PREFIX.test(text + c)) continue;
          shortest = Math.min(shortest, 1 + visit(text + c, stepAll(states, c.charCodeAt(0))));
        }
      }
      const alive = states.length > 0;
      if (shortest < Infinity) {
        assert.ok(alive, `prefix "${text}" died under ${JSON.stringify(raw)}, but ${shortest} more characters complete it`);
        assert.equal(least(states), shortest, `cost of "${text}" under ${JSON.stringify(raw)}`);
      } else {
        // No completion within the horizon: alive only if the cost says it needs more.
        assert.ok(!alive || text.length + least(states) > HORIZON, `prefix "${text}" lives under ${JSON.stringify(raw)} at cost ${least(states)}, yet nothing completes it`);
      }
      checked++;
      return shortest;
    };
    visit('', [initialState(schema)]);
  }
  assert.ok(checked > 100000, `${checked} prefixes checked`);
});

/** A decimal written out in full, without an exponent. */
function plain(d: Decimal): string {
  const negative = d.digits < 0n;
  const digits = (negative ? -d.digits : d.digits).toString().padStart(d.scale + 1, '0');
  const text = d.scale === 0 ? digits : `${digits.slice(0, -d.scale)}.${digits.slice(-d.scale)}`;
  return negative ? `-${text}` : text;
}

/** x ± one unit in the place after its last digit. */
const nudged = (x: Decimal, by: -1n | 1n): Decimal => ({ digits: x.digits * 10n + by, scale: x.scale + 1 });

/** Texts at a bound's rounding edges: the bound and its neighbours, the midpoints (ties), and either side of them. */
function edgeTexts(b: number): string[] {
  const values = [b, nextUp(b), nextDown(b)].filter(Number.isFinite);
  const points: Decimal[] = values.map(exactValue);
  for (const other of [nextUp(b), nextDown(b)].filter(Number.isFinite)) {
    const tie = midpoint(exactValue(b), exactValue(other));
    points.push(tie, nudged(tie, 1n), nudged(tie, -1n));
  }
  const texts = points.map(plain);
  // The shortest text that reads as each value (JavaScript's own), written out in full.
  for (const v of values) texts.push(plain(shortestDecimal(v)));
  return [...new Set(texts)];
}

function shortestDecimal(v: number): Decimal {
  const [mantissa, exponent = '0'] = v.toString().split('e');
  const [whole, fraction = ''] = mantissa!.split('.');
  const digits = BigInt(whole! + fraction);
  const scale = fraction.length - Number(exponent);
  return scale >= 0 ? { digits, scale } : { digits: digits * 10n ** BigInt(-scale), scale: 0 };
}

test('at the rounding edges of each bound, a text is accepted exactly when the double it reads as is in range', () => {
  const rng = new Rng(2024);
  const bounds = [0, -0, Number.MIN_VALUE, -Number.MIN_VALUE, 2.2250738585072014e-308, 0.1, 0.3, -0.7, 1, 2 ** 53, 1e21, 1e-7, 123.456];
  for (let i = 0; i < 20; i++) bounds.push((rng.next() - 0.5) * 10 ** Math.floor(rng.next() * 16 - 8));
  let checked = 0;
  for (const b of bounds) {
    for (const keyword of ['minimum', 'maximum', 'exclusiveMinimum', 'exclusiveMaximum']) {
      const raw = { type: 'number', [keyword]: b };
      const schema = compile(raw);
      for (const text of edgeTexts(b)) {
        assert.equal(accepts(schema, text), valid(raw, text), `${text} under ${keyword} ${b}`);
        checked++;
      }
    }
  }
  assert.ok(checked > 500, `${checked} texts checked`);
});

test('inexact decimal bounds compare as JSON.parse reads the text', () => {
  const tenth = compile({ type: 'number', minimum: 0.1 });
  for (const ok of ['0.1', '0.10000000000000001', '0.099999999999999999999', '1']) assert.ok(accepts(tenth, ok), ok);
  for (const bad of ['0.09', '0.09999999999999999']) assert.ok(!accepts(tenth, bad), bad);
  const above = compile({ type: 'number', exclusiveMinimum: 0.1 });
  for (const bad of ['0.1', '0.10000000000000001', '0.1000000000000000055511151231257827']) assert.ok(!accepts(above, bad), bad);
  assert.ok(accepts(above, '0.10000000000000002'));
  // Above zero: a text that reads as 0 (or -0) is out, however many zeros it has.
  const positive = compile({ type: 'number', exclusiveMinimum: 0 });
  for (const bad of ['0', '-0', '0.0', `0.${'0'.repeat(330)}1`]) assert.ok(!accepts(positive, bad), bad);
  assert.ok(accepts(positive, `0.${'0'.repeat(322)}5`));
});

const SCHEMAS: Record<string, { raw: object; walks: number }> = {
  positive: { raw: { type: 'number', exclusiveMinimum: 0 }, walks: 150 },
  interval: { raw: { type: 'number', minimum: -1.5, maximum: 2.25 }, walks: 150 },
  narrow: { raw: { type: 'number', exclusiveMinimum: 0.1, exclusiveMaximum: 0.2 }, walks: 150 },
  tiny: { raw: { type: 'number', minimum: 1e-7, maximum: 2e-7 }, walks: 100 },
  large: { raw: { type: 'number', minimum: 123456.5 }, walks: 100 },
  negative: { raw: { type: 'number', maximum: -1e-5 }, walks: 100 },
  nearZero: { raw: { type: 'number', minimum: -Number.MIN_VALUE, maximum: Number.MIN_VALUE }, walks: 60 },
  // Only texts that read as the smallest subnormal: 324 digits after the point at the least.
  smallest: { raw: { type: 'number', exclusiveMinimum: 0, maximum: Number.MIN_VALUE }, walks: 3 },
  order: {
    raw: {
      type: 'object', additionalProperties: false, required: ['price', 'discount'],
      properties: { price: { type: 'number', exclusiveMinimum: 0 }, discount: { type: 'number', minimum: 0, exclusiveMaximum: 1 }, celsius: { type: ['number', 'null'], minimum: -273.15 } },
    },
    walks: 150,
  },
  either: { raw: { type: 'array', minItems: 1, maxItems: 3, items: { anyOf: [{ type: 'number', maximum: -100.5 }, { type: 'number', minimum: 100.5 }, { type: 'integer', minimum: -3, maximum: 3 }] } }, walks: 150 },
  fractions: { raw: { type: 'array', minItems: 2, items: { type: 'number', minimum: 0.5, maximum: 0.75 } }, walks: 150 },
};

const ALPHABET = [...bytesOf('{}[]",:-+.eE0123456789 nulpricedsotaf')];

/** A random document written byte by byte under the automaton, within `budget` bytes. */
const walk = (schema: Schema, rng: Rng, budget: number) => walkDocument(schema, ALPHABET, rng, budget);

test('random walks under bounded schemas never dead-end, fit their budget, write no exponent and satisfy the schema', () => {
  for (const [name, { raw, walks }] of Object.entries(SCHEMAS)) {
    const schema = compile(raw);
    const rng = new Rng(name.length * 13 + 5);
    for (let i = 0; i < walks; i++) {
      const budget = cost(initialState(schema)) + Math.floor(rng.next() * 40);
      const text = walk(schema, rng, budget);
      assert.ok(bytesOf(text).length <= budget, `${name}: ${text} over ${budget}`);
      assert.doesNotMatch(text, /\d[eE]/, name);
      assert.ok(valid(raw, text), `${name}: ${text}`);
    }
  }
  // And every combination of bounds from the exhaustive test, each under several seeds.
  for (const [i, raw] of boundCombinations().entries()) {
    const schema = compile(raw);
    const rng = new Rng(1000 + i);
    for (let k = 0; k < 12; k++) {
      const text = walk(schema, rng, cost(initialState(schema)) + Math.floor(rng.next() * 24));
      assert.ok(valid(raw, text), `${text} under ${JSON.stringify(raw)}`);
    }
  }
});

test('texts near valid ones are accepted exactly when they parse and satisfy the schema (exponents aside)', () => {
  const mutations = '-.0159e,]';
  for (const [name, { raw, walks }] of Object.entries(SCHEMAS)) {
    if (walks < 100) continue;
    const schema = compile(raw);
    const rng = new Rng(name.length * 7 + 1);
    let accepted = 0;
    let refused = 0;
    for (let i = 0; i < 200; i++) {
      const chars = [...walk(schema, rng, cost(initialState(schema)) + Math.floor(rng.next() * 30))];
      const at = Math.floor(rng.next() * (chars.length + 1));
      const c = mutations[Math.floor(rng.next() * mutations.length)]!;
      const op = Math.floor(rng.next() * 3);
      if (op === 0) chars.splice(at, 1);
      else if (op === 1) chars.splice(at, 0, c);
      else chars.splice(at, 1, c);
      const text = chars.join('');
      // Bounded numbers are written without an exponent, by design (src/constrained/number-bounds.ts).
      if (/\d[eE]/.test(text) || text !== text.trim()) continue;
      const expected = valid(raw, text);
      assert.equal(accepts(schema, text), expected, `${name}: ${text}`);
      if (expected) accepted++;
      else refused++;
    }
    assert.ok(accepted >= 10 && refused >= 10, `${name}: ${accepted} accepted, ${refused} refused`);
  }
});
