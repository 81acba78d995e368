// response_format through constrained decoding on the bundled model (a 512-token SentencePiece
// vocabulary with byte-fallback tokens): every output parses as JSON and matches its schema, for
// several schemas, seeds and token budgets, including budgets that force the document to close early.
// The check is the validator in test/constrained/schema-validator.ts, independent of the decoder's automaton.
import assert from 'node:assert/strict';
import { after, before, test } from 'node:test';
import { postJson, startServer, type TestServer } from './helpers.js';
import { satisfies } from '../constrained/schema-validator.js';

const matches = (v: unknown, schema: object) => satisfies(v, schema, true);

let s: TestServer;
before(async () => {
  s = await startServer();
});
after(() => s.close());

const SCHEMAS: Record<string, object> = {
  person: {
    type: 'object', additionalProperties: false, required: ['name', 'age', 'pets'],
    properties: { name: { type: 'string' }, age: { type: 'integer' }, pets: { type: 'array', items: { type: 'string' } }, nick: { type: 'string' } },
  },
  nested: {
    type: 'object', additionalProperties: false, required: ['story', 'ok'],
    properties: {
      story: { type: 'object', additionalProperties: false, required: ['title', 'mood'], properties: { title: { type: 'string' }, mood: { enum: ['happy', 'sad', 3, null] } } },
      ok: { type: 'boolean' }, score: { type: 'number' }, none: { type: 'null' },
    },
  },
  union: { type: 'object', additionalProperties: false, required: ['v'], properties: { v: { anyOf: [{ type: 'integer' }, { type: 'string' }, { type: 'array', items: { type: ['number', 'null'] } }] } } },
  list: { type: 'array', items: { type: 'object', properties: { id: { type: 'integer' } }, required: ['id'] } },
  open: { type: 'object', properties: { a: { type: 'number' } } },
};

/** Schemas with the keywords beyond the basic subset: recursion through $ref, prefixItems, item, length, integer and number bounds. */
const BOUNDED: Record<string, object> = {
  tree: {
    $defs: {
      node: {
        type: 'object', additionalProperties: false, required: ['name', 'children'],
        properties: { name: { type: 'string', maxLength: 6 }, children: { type: 'array', maxItems: 2, items: { $ref: '#/$defs/node' } } },
      },
    },
    $ref: '#/$defs/node',
  },
  bounds: {
    type: 'object', additionalProperties: false, required: ['tags', 'title', 'year', 'rank'],
    properties: {
      tags: { type: 'array', minItems: 2, maxItems: 3, items: { type: 'string', minLength: 1, maxLength: 4 } },
      title: { type: 'string', minLength: 5, maxLength: 12 },
      year: { type: 'integer', minimum: 1900, exclusiveMaximum: 2031 },
      rank: { type: 'integer', minimum: -40, maximum: -3 },
    },
  },
  tuple: { type: 'array', prefixItems: [{ type: 'string', minLength: 2, maxLength: 8 }, { type: 'integer', minimum: 0, maximum: 9 }, { enum: ['cat', 'dog'] }], items: false, minItems: 3 },
  nestedLists: { definitions: { list: { type: 'array', maxItems: 3, items: { anyOf: [{ type: 'integer', minimum: 7, maximum: 130 }, { $ref: '#/definitions/list' }] } } }, $ref: '#/definitions/list' },
  measures: {
    type: 'object', additionalProperties: false, required: ['height', 'share', 'delta', 'tiny'],
    properties: {
      height: { type: 'number', exclusiveMinimum: 0, maximum: 2.5 },
      share: { type: 'number', minimum: 0.25, exclusiveMaximum: 0.5 },
      delta: { type: 'number', minimum: -40.75, maximum: -3.5 },
      tiny: { type: 'number', exclusiveMinimum: 0, exclusiveMaximum: 0.001 },
      readings: { type: 'array', maxItems: 3, items: { type: ['number', 'null'], minimum: 100.5 } },
    },
  },
};

async function chatJson(body: object) {
  const r = await postJson(`${s.url}/v1/chat/completions`, { messages: [{ role: 'user', content: 'Tell me about a girl and her dog.' }], ...body });
  assert.equal(r.status, 200, r.text);
  return r.json.choices[0] as { message: { content: string }; finish_reason: string };
}

test('json_object: always a valid JSON object, whatever the seed and budget', async () => {
  for (const seed of [1, 2, 3]) {
    for (const max_tokens of [8, 40]) {
      const c = await chatJson({ response_format: { type: 'json_object' }, seed, temperature: 1, max_tokens });
      const v = JSON.parse(c.message.content);
      assert.ok(typeof v === 'object' && v !== null && !Array.isArray(v), c.message.content);
    }
  }
  const greedy = await chatJson({ response_format: { type: 'json_object' }, temperature: 0, max_tokens: 30 });
  JSON.parse(greedy.message.content);
});

test('json_schema: objects, arrays, enums, nested objects and anyOf, valid and matching', async () => {
  for (const [name, schema] of Object.entries(SCHEMAS)) {
    for (const seed of [7, 8]) {
      for (const max_tokens of [45, 90]) {
        const c = await chatJson({ response_format: { type: 'json_schema', json_schema: { name, schema, strict: true } }, seed, temperature: 1, max_tokens });
        let v: unknown;
        assert.doesNotThrow(() => (v = JSON.parse(c.message.content)), `${name} seed ${seed}: ${c.message.content}`);
        assert.ok(matches(v, schema), `${name} seed ${seed}: ${c.message.content}`);
      }
    }
  }
});

test('json_schema with $ref recursion, prefixItems, item, length, integer and number bounds: every seed and budget yields a matching document', async () => {
  let nestedTrees = 0;
  for (const [name, schema] of Object.entries(BOUNDED)) {
    for (let seed = 1; seed <= 8; seed++) {
      const max_tokens = seed % 2 === 0 ? 64 : 160;
      const c = await chatJson({ response_format: { type: 'json_schema', json_schema: { name, schema, strict: true } }, seed, temperature: 1.2, max_tokens });
      let v: unknown;
      assert.doesNotThrow(() => (v = JSON.parse(c.message.content)), `${name} seed ${seed}: ${c.message.content}`);
      assert.ok(matches(v, schema), `${name} seed ${seed}: ${c.message.content}`);
      if (name === 'tree' && (v as { children: unknown[] }).children.length > 0) nestedTrees++;
    }
  }
  // The recursion is exercised, not only the shortest tree.
  assert.ok(nestedTrees > 0);
});

test('the legacy completions endpoint takes response_format too, streamed as well', async () => {
  const r = await postJson(`${s.url}/v1/completions`, { prompt: 'Once upon a time', response_format: { type: 'json_object' }, max_tokens: 20, seed: 4, temperature: 1, stream: true });
  const text = r.text.split('\n').filter((l) => l.startsWith('data: {')).map((l) => JSON.parse(l.slice(6)).choices[0]?.text ?? '').join('');
  JSON.parse(text);
});

test('an unsupported schema keyword is a 400 naming it; too small a budget too', async () => {
  for (const [schema, keyword] of [[{ type: 'string', pattern: '^a' }, 'pattern'], [{ type: 'object', properties: { x: { $ref: '#/x' } } }, '$ref'], [{ type: 'number', multipleOf: 0.5 }, 'multipleOf'], [{ type: 'number', minimum: 3, maximum: 2 }, 'minimum'], [{ type: 'string', format: 'date' }, 'format'], [{ $ref: 'https://example.com/a.json' }, '$ref'], [{ type: 'array', minItems: -1 }, 'minItems'], [{ type: 'array', uniqueItems: true }, 'uniqueItems']] as const) {
    const r = await postJson(`${s.url}/v1/chat/completions`, { messages: [{ role: 'user', content: 'x' }], response_format: { type: 'json_schema', json_schema: { name: 'x', schema } } });
    assert.equal(r.status, 400, r.text);
    assert.equal(r.json.error.param, 'response_format');
    assert.ok(r.json.error.message.includes(`"${keyword}"`), r.json.error.message);
  }
  const small = await postJson(`${s.url}/v1/chat/completions`, { messages: [{ role: 'user', content: 'x' }], max_tokens: 5, response_format: { type: 'json_schema', json_schema: { name: 'p', schema: SCHEMAS.person } } });
  assert.equal(small.status, 400);
  assert.equal(small.json.error.param, 'max_tokens');
});
