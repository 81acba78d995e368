// Reading a Llama 3.x JSON reply: a call at the start ({"name", "parameters"}), more after "; ", text
// after them as content; anything that is not whole calls from the start stays text.
import assert from 'node:assert/strict';
import { test } from 'node:test';
import { parseLlamaJsonReply } from '../../src/server/llama-json-calls.js';

const named = (r: ReturnType<typeof parseLlamaJsonReply>) => r?.calls.map((c) => [c.function.name, JSON.parse(c.function.arguments)]);

test('one call, blanks before and after, is the reply: no content, arguments as JSON text, an OpenAI-style id', () => {
  const r = parseLlamaJsonReply('\n {"name": "get_weather", "parameters": {"city": "Oslo", "note": "a } and a \\" inside"}}\n');
  assert.deepEqual(named(r), [['get_weather', { city: 'Oslo', note: 'a } and a " inside' }]]);
  assert.equal(r!.content, null);
  assert.match(r!.calls[0]!.id, /^call_[0-9a-f]{24}$/);
});

test('Llama 3.2\'s several calls separated by "; " are each a call; text after the last is content', () => {
  const r = parseLlamaJsonReply('{"name": "a", "parameters": {}}; {"name": "b", "parameters": {"x": [1, {"y": 2}]}} Done.');
  assert.deepEqual(named(r), [['a', {}], ['b', { x: [1, { y: 2 }] }]]);
  assert.equal(r!.content, ' Done.');
  assert.notEqual(r!.calls[0]!.id, r!.calls[1]!.id);
});

test('text first, a cut call, "arguments" instead of "parameters", or a broken second call: plain text', () => {
  assert.equal(parseLlamaJsonReply('Sure: {"name": "a", "parameters": {}}'), undefined);
  assert.equal(parseLlamaJsonReply('{"name": "a", "parame'), undefined);
  assert.equal(parseLlamaJsonReply('{"name": "a", "arguments": {}}'), undefined);
  assert.equal(parseLlamaJsonReply('{"name": "a", "parameters": []}'), undefined);
  assert.equal(parseLlamaJsonReply('{"name": "a", "parameters": {}}; {"name": "b"'), undefined);
  assert.equal(parseLlamaJsonReply('{"name": "a", "parameters": {},}'), undefined);
  assert.equal(parseLlamaJsonReply(''), undefined);
});
