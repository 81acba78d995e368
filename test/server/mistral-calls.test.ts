// Reading a Mistral reply: [TOOL_CALLS] then a JSON array of {"name", "arguments"}; ids of 9 letters or
// digits (the shape Mistral's templates check); text around the array is content; a cut array is text.
import assert from 'node:assert/strict';
import { test } from 'node:test';
import { parseMistralReply } from '../../src/server/mistral-calls.js';

test('an array of calls after [TOOL_CALLS] is the calls, each with its own 9-character alphanumeric id', () => {
  const r = parseMistralReply('[TOOL_CALLS] [{"name": "get_weather", "arguments": {"city": "Oslo"}}, {"name": "get_time", "arguments": {}}]');
  assert.deepEqual(r!.calls.map((c) => [c.type, c.function.name, JSON.parse(c.function.arguments)]), [
    ['function', 'get_weather', { city: 'Oslo' }],
    ['function', 'get_time', {}],
  ]);
  assert.equal(r!.content, null);
  for (const c of r!.calls) assert.match(c.id, /^[A-Za-z0-9]{9}$/);
  assert.notEqual(r!.calls[0]!.id, r!.calls[1]!.id);
});

test('text before the calls is content, as is text after them unless blank', () => {
  assert.equal(parseMistralReply('Checking.[TOOL_CALLS][{"name": "a", "arguments": {}}]\n')!.content, 'Checking.');
  assert.equal(parseMistralReply('[TOOL_CALLS] [{"name": "a", "arguments": {"s": "]"}}] ok')!.content, ' ok');
});

test('no marker, a cut or empty array, or an item that is not a call: plain text', () => {
  assert.equal(parseMistralReply('[{"name": "a", "arguments": {}}]'), undefined);
  assert.equal(parseMistralReply('[TOOL_CALLS] [{"name": "a", "argu'), undefined);
  assert.equal(parseMistralReply('[TOOL_CALLS] []'), undefined);
  assert.equal(parseMistralReply('[TOOL_CALLS] {"name": "a", "arguments": {}}'), undefined);
  assert.equal(parseMistralReply('[TOOL_CALLS] [{"name": "a", "arguments": {}}, 3]'), undefined);
  assert.equal(parseMistralReply('[TOOL_CALLS] [{"name": "a", "parameters": {}}]'), undefined);
});
