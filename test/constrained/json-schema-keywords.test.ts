// The schema keywords beyond the basic subset ($ref with recursion, prefixItems, minItems/maxItems,
// minLength/maxLength, integer bounds; number bounds have their own file), held to an independent
// validator (schema-validator.ts):
// - a random walk over bytes, with a byte budget, never meets a dead end, always finishes inside the
//   budget, and everything it writes satisfies the schema;
// - texts near those (mutated) and random JSON values are accepted exactly when they parse and satisfy it;
// - integer bounds, exhaustively over short integers: a prefix is alive exactly when some continuation
//   lands in range, and a number ends exactly when it is in range;
// - bad or unsupported keywords are refused with a message naming them.
import assert from 'node:assert/strict';
import { test } from 'node:test';
import { canEnd, cost, initialState, stepAll, type JsonState } from '../../src/constrained/json-automaton.js';
import { compileResponseFormat, type Schema } from '../../src/constrained/json-schema.js';
import { Rng } from '../../src/engine/rng.js';
import { satisfies } from './schema-validator.js';
import { walkDocument } from './automaton-walk.js';

const compile = (schema: unknown) => compileResponseFormat({ type: 'json_schema', schema, strict: true });
const bytesOf = (s: string) => new TextEncoder().encode(s);

function accepts(schema: Schema, text: string): boolean {
  let states: JsonState[] = [initialState(schema)];
  for (const b of bytesOf(text)) {
    states = stepAll(states, b);
    if (states.length === 0) return false;
  }
  return states.some(canEnd);
}

const SCHEMAS: Record<string, object> = {
  tree: {
    $defs: {
      node: {
        type: 'object', additionalProperties: false, required: ['v', 'kids'],
        properties: { v: { type: 'integer', minimum: -3, maximum: 12 }, kids: { type: 'array', maxItems: 2, items: { $ref: '#/$defs/node' } } },
      },
    },
    $ref: '#/$defs/node',
  },
  nestedArrays: { type: 'array', maxItems: 3, items: { anyOf: [{ type: 'integer', exclusiveMinimum: -1, exclusiveMaximum: 3 }, { $ref: '#' }] } },
  definitions: {
    definitions: { name: { type: 'string', minLength: 2, maxLength: 4 } },
    type: 'object', additionalProperties: false, required: ['a'],
    properties: { a: { $ref: '#/definitions/name' }, b: { type: 'array', items: { $ref: '#/definitions/name' }, minItems: 1, maxItems: 3 } },
  },
  intRanges: {
    type: 'array', minItems: 2, maxItems: 4,
    items: { anyOf: [{ type: 'integer', minimum: 95, maximum: 1050 }, { type: 'integer', maximum: -20, minimum: -125 }, { type: 'integer', exclusiveMinimum: 0.5, exclusiveMaximum: 3.5 }] },
  },
  bigMinimum: { type: 'integer', minimum: 1000000 },
  negativeMaximum: { type: 'integer', maximum: -7 },
  onlyZero: { type: 'integer', minimum: 0, maximum: 0 },
  shortString: { type: 'string', minLength: 1, maxLength: 3 },
  tuple: { type: 'array', prefixItems: [{ type: 'integer', minimum: 1, maximum: 12 }, { type: 'string', maxLength: 2 }, { type: 'boolean' }], items: false, minItems: 2 },
  tupleThenItems: { prefixItems: [{ const: 'x' }, { type: 'null' }], items: { type: 'integer', maximum: 5 }, maxItems: 4 },
  longString: { type: 'object', additionalProperties: false, required: ['s'], properties: { s: { type: 'string', minLength: 3 }, t: { type: ['string', 'null'], maxLength: 0 } } },
};

// Bytes a walk may draw: JSON punctuation, digits, letters of literals, escapes and the schemas' keys, and the UTF-8 of é, ☃ and 😀.
const ALPHABET = [...bytesOf('{}[]",:-0123456789 tfnrulsaebvkidx\\D8'), 0xc3, 0xa9, 0xe2, 0x98, 0x83, 0xf0, 0x9f, 0x80];

/** A random document written byte by byte under the automaton, within `budget` bytes. */
const walk = (schema: Schema, rng: Rng, budget: number) => walkDocument(schema, ALPHABET, rng, budget);

function parses(text: string): { ok: true; v: unknown } | { ok: false } {
  try {
    return { ok: true, v: JSON.parse(text) };
  } catch {
    return { ok: false };
  }
}

test('random walks under each schema never dead-end, fit their budget and satisfy the schema', () => {
  for (const [name, raw] of Object.entries(SCHEMAS)) {
    const schema = compile(raw);
    const rng = new Rng(name.length * 31 + 7);
    for (let i = 0; i < 150; i++) {
      const budget = cost(initialState(schema)) + Math.floor(rng.next() * 60);
      const text = walk(schema, rng, budget);
      assert.ok(bytesOf(text).length <= budget, `${name}: ${text} over ${budget}`);
      const p = parses(text);
      assert.ok(p.ok, `${name}: ${text} does not parse`);
      assert.ok(satisfies(p.v, raw, true), `${name}: ${text} does not satisfy the schema`);
    }
  }
});

/** A random JSON value near the shapes the schemas describe (and often just outside them). */
function randomValue(rng: Rng, depth: number): unknown {
  const pick = <T>(xs: readonly T[]) => xs[Math.floor(rng.next() * xs.length)]!;
  const r = rng.next();
  if (depth > 3 || r < 0.45) {
    return pick([
      () => pick([0, 1, 2, 3, 4, -1, -3, -4, 12, 13, 95, 94, 1050, 1051, -20, -19, -125, -126, 1000000, 999999, 12345678, -7, -6]),
      () => Math.floor(rng.next() * 400) - 200,
      () => 2.5,
      () => Array.from({ length: Math.floor(rng.next() * 6) }, () => pick(['a', 'é', '☃', '😀', '\n', '"'])).join(''),
      () => pick([true, false, null]),
    ])();
  }
  if (r < 0.75) return Array.from({ length: Math.floor(rng.next() * 6) }, () => randomValue(rng, depth + 1));
  const keys = ['v', 'kids', 'a', 'b', 's', 't', 'x'];
  return Object.fromEntries(keys.filter(() => rng.next() < 0.5).map((k) => [k, randomValue(rng, depth + 1)]));
}

/** Texts the automaton rejects by design although JSON accepts them: see the README. */
function outsideTheGrammar(text: string): boolean {
  // More than two blanks in a row, or blanks around the top-level value; an escaped surrogate in a length-bounded string.
  return /\s\s\s/.test(text) || text !== text.trim() || /\\u[dD][89a-fA-F]/.test(text);
}

test('texts near valid ones, and random values, are accepted exactly when they parse and satisfy the schema', () => {
  const mutations = '{}[]",:-019 nul\\é';
  for (const [name, raw] of Object.entries(SCHEMAS)) {
    const schema = compile(raw);
    const rng = new Rng(name.length * 17 + 3);
    let valid = 0;
    let invalid = 0;
    const check = (text: string) => {
      if (outsideTheGrammar(text)) return;
      const p = parses(text);
      const expected = p.ok && satisfies(p.v, raw, true);
      assert.equal(accepts(schema, text), expected, `${name}: ${text}`);
      if (expected) valid++;
      else invalid++;
    };
    for (let i = 0; i < 300; i++) {
      const chars = [...walk(schema, rng, cost(initialState(schema)) + Math.floor(rng.next() * 50))];
      check(chars.join(''));
      const at = Math.floor(rng.next() * (chars.length + 1));
      const c = mutations[Math.floor(rng.next() * mutations.length)]!;
      const op = Math.floor(rng.next() * 3);
      if (op === 0) chars.splice(at, 1);
      else if (op === 1) chars.splice(at, 0, c);
      else chars.splice(at, 1, c);
      check(chars.join(''));
      check(JSON.stringify(randomValue(rng, 0)));
    }
    assert.ok(valid > 100 && invalid > 100, `${name}: ${valid} valid, ${invalid} invalid texts checked`);
  }
});

test('integer bounds, exhaustively: a prefix lives exactly when a continuation lands in range; a number ends exactly in range', () => {
  // Every integer text of up to four digits, with and without '-', plus "-0"; ranges within ±1000 so four digits reach past them.
  const texts: string[] = ['-0', '0'];
  for (let v = 1; v < 10000; v++) texts.push(String(v), `-${v}`);
  const prefixes = new Set<string>(['-']);
  for (const t of texts) for (let k = 1; k < t.length; k++) prefixes.add(t.slice(0, k));
  const bounds: [number | undefined, number | undefined][] = [];
  for (const lo of [undefined, -1000, -120, -7, 0, 1, 5, 99, 100]) for (const hi of [undefined, -100, -7, 0, 3, 99, 100, 999]) if (lo === undefined || hi === undefined || lo <= hi) bounds.push([lo, hi]);
  for (const [lo, hi] of bounds) {
    if (lo === undefined && hi === undefined) continue;
    const inRange = (v: number) => (lo === undefined || v >= lo) && (hi === undefined || v <= hi);
    const raw = { type: 'integer', ...(lo !== undefined && { minimum: lo }), ...(hi !== undefined && { maximum: hi }) };
    const schema = compile(raw);
    const alive = new Set<string>();
    for (const t of texts) {
      assert.equal(accepts(schema, t), inRange(Number(t)), `${t} under ${JSON.stringify(raw)}`);
      if (inRange(Number(t))) for (let k = 1; k <= t.length; k++) alive.add(t.slice(0, k));
    }
    // Unbounded above, a big enough number always exists beyond four digits.
    const beyond = (p: string) => (hi === undefined && !p.startsWith('-') && p !== '0') || (lo === undefined && p.startsWith('-') && p !== '-0');
    for (const p of prefixes) {
      let states: JsonState[] = [initialState(schema)];
      for (const b of bytesOf(p)) states = stepAll(states, b);
      assert.equal(states.length > 0, alive.has(p) || beyond(p), `prefix ${p} under ${JSON.stringify(raw)}`);
    }
  }
});

test('string lengths count code points: an escape is one, a surrogate pair written as UTF-8 is one', () => {
  const schema = compile({ type: 'string', minLength: 2, maxLength: 2 });
  for (const ok of ['"ab"', '"\\n\\t"', '"😀x"', '"é☃"', '"\\u0041b"']) assert.ok(accepts(schema, ok), ok);
  for (const bad of ['"a"', '"abc"', '"😀"', '"\\n"', '"é☃x"', '"\\ud83d\\ude00x"']) assert.ok(!accepts(schema, bad), bad);
});

test('invalid UTF-8 is rejected inside strings: overlong forms, surrogates, code points past U+10FFFF', () => {
  const schema = compile({ type: 'string' });
  const run = (bytes: number[]) => {
    let states: JsonState[] = [initialState(schema)];
    for (const b of [0x22, ...bytes, 0x22]) states = stepAll(states, b);
    return states.some(canEnd);
  };
  assert.ok(run([0xe0, 0xa0, 0x80]) && run([0xed, 0x9f, 0xbf]) && run([0xf0, 0x90, 0x80, 0x80]) && run([0xf4, 0x8f, 0xbf, 0xbf]));
  for (const bad of [[0xe0, 0x80, 0x80], [0xed, 0xa0, 0x80], [0xf0, 0x80, 0x80, 0x80], [0xf4, 0x90, 0x80, 0x80], [0xc0, 0x80]]) assert.ok(!run(bad), bad.map((b) => b.toString(16)).join(' '));
});

test('refusals name the keyword and say what is wrong', () => {
  const refused = (schema: unknown, ...words: string[]) => {
    assert.throws(
      () => compile(schema),
      (e: Error & { param?: string }) => {
        assert.equal(e.param, 'response_format');
        for (const w of words) assert.ok(e.message.includes(w), `${e.message} lacks ${w}`);
        return true;
      },
    );
  };
  refused({ type: 'string', pattern: '^a' }, '"pattern"');
  refused({ type: 'string', format: 'date' }, '"format"');
  refused({ type: 'array', prefixItems: { type: 'string' } }, '"prefixItems"', 'array');
  refused({ type: 'array', prefixItems: [{}, {}], items: false, minItems: 3 }, '"minItems" 3', '"prefixItems"', '"items": false');
  refused({ type: 'array', uniqueItems: true }, '"uniqueItems"');
  refused({ $ref: 'https://example.com/s.json' }, '"$ref"', 'https://example.com/s.json');
  refused({ $ref: '#/$defs/missing' }, '"$ref"', '#/$defs/missing', 'does not define');
  refused({ $ref: '#/properties/a' }, '"$ref"', '#/properties/a');
  refused({ $ref: '#/$defs/a', type: 'object', $defs: { a: {} } }, '"$ref"', 'type');
  refused({ type: 'array', minItems: -1 }, '"minItems"', 'non-negative integer');
  refused({ type: 'array', minItems: 1.5 }, '"minItems"', 'non-negative integer');
  refused({ type: 'array', minItems: 3, maxItems: 2 }, '"minItems" 3', '"maxItems" 2');
  refused({ type: 'string', minLength: 5, maxLength: 1 }, '"minLength" 5', '"maxLength" 1');
  refused({ type: 'string', maxLength: 'x' }, '"maxLength"');
  refused({ type: 'integer', minimum: 5, maximum: 4 }, 'no integer satisfies', '"minimum" 5', '"maximum" 4');
  refused({ type: 'integer', exclusiveMinimum: 2, exclusiveMaximum: 3 }, 'no integer satisfies', '"exclusiveMinimum" 2');
  refused({ type: 'integer', minimum: '3' }, '"minimum"', 'finite number');
  refused({ type: 'number', minimum: 0.5, maximum: 0.25 }, 'no finite number satisfies', '"minimum" 0.5', '"maximum" 0.25');
  refused({ type: 'number', exclusiveMinimum: 1, exclusiveMaximum: 1 }, 'no finite number satisfies', '"exclusiveMinimum" 1');
  refused({ type: 'number', exclusiveMinimum: Number.MAX_VALUE }, 'no finite number satisfies');
  refused({ type: ['integer', 'number'], maximum: Infinity }, '"maximum"', 'finite number');
  refused({ $defs: { a: { type: 'object', required: ['x'], properties: { x: { $ref: '#/$defs/a' } } } }, $ref: '#/$defs/a' }, '#/$defs/a', 'no finite value');
  refused({ $defs: { a: { anyOf: [{ $ref: '#/$defs/b' }, { type: 'null' }] }, b: { $ref: '#/$defs/a' } }, $ref: '#/$defs/a' }, 'refers to itself without nesting');
  refused({ anyOf: [{ $ref: '#' }, { type: 'null' }] }, '"#"', 'refers to itself without nesting');
  refused({ $defs: [] }, '"$defs"', 'object');
  // Bounds with nothing to attach them to would be dropped, so they are refused.
  refused({ minimum: 3 }, '"minimum"', '"type"');
  refused({ minLength: 1 }, '"minLength"', '"type"');
  refused({ enum: [1, 2], maximum: 1 }, '"maximum"', 'enum');
  refused({ anyOf: [{ type: 'string' }], maxLength: 1 }, '"maxLength"', 'anyOf');
});

test('a subschema with $id is its own resource: "#" refs inside it resolve there', () => {
  const schema = compile({
    type: 'object', additionalProperties: false, required: ['a', 'b'],
    properties: { a: { $id: 'inner', $defs: { d: { type: 'integer', minimum: 5 } }, $ref: '#/$defs/d' }, b: { $ref: '#/$defs/d' } },
    $defs: { d: { type: 'string', maxLength: 1 } },
  });
  assert.ok(accepts(schema, '{"a":5,"b":"x"}'));
  for (const bad of ['{"a":4,"b":"x"}', '{"a":"x","b":"x"}', '{"a":5,"b":5}']) assert.ok(!accepts(schema, bad), bad);
  assert.throws(() => compile({ $id: 3 }), /"\$id"/);
});

test('a definition used in many places is compiled once, so recursion is a cycle in the tree', () => {
  const s = compile(SCHEMAS.tree) as Extract<Schema, { kind: 'ref' }>;
  assert.equal(s.kind, 'ref');
  const node = s.def.schema as Extract<Schema, { kind: 'object' }>;
  const kids = node.props.get('kids') as Extract<Schema, { kind: 'array' }>;
  assert.equal((kids.items as Extract<Schema, { kind: 'ref' }>).def, s.def);
  // The shortest tree is {"v":0,"kids":[]}.
  assert.equal(s.def.min, '{"v":0,"kids":[]}'.length);
});
