// Tool calls where vserve can keep its word: tool_choice "required" or a named function forces the
// reply to be one call whose arguments match the function's parameters (constrained decoding), sent
// back as message.tool_calls, whole or streamed. "auto" on a model whose chat template shows no known
// tool-call convention (the bundled model has no template) and tools on the legacy endpoint are refused;
// "auto" where the convention is known is in tool-calls-auto.test.ts.
import assert from 'node:assert/strict';
import { after, before, test } from 'node:test';
import OpenAI from 'openai';
import { MODEL, postJson, startServer, type TestServer } from './helpers.js';
import { satisfies } from '../constrained/schema-validator.js';

let s: TestServer;
let client: OpenAI;
before(async () => {
  s = await startServer();
  client = new OpenAI({ baseURL: `${s.url}/v1`, apiKey: 'x', maxRetries: 0 });
});
after(() => s.close());

const TOOLS: OpenAI.Chat.Completions.ChatCompletionTool[] = [
  { type: 'function', function: { name: 'get_weather', parameters: { type: 'object', additionalProperties: false, required: ['city', 'days'], properties: { city: { type: 'string' }, days: { type: 'integer' } } } } },
  { type: 'function', function: { name: 'set_mood', parameters: { type: 'object', additionalProperties: false, required: ['mood'], properties: { mood: { enum: ['happy', 'sad'] } } } } },
];
const messages: OpenAI.Chat.Completions.ChatCompletionMessageParam[] = [{ role: 'user', content: 'What is the weather?' }];

function assertCall(call: { type: string; id: string; function: { name: string; arguments: string } }, names: string[]) {
  assert.equal(call.type, 'function');
  assert.match(call.id, /^call_/);
  assert.ok(names.includes(call.function.name), call.function.name);
  const args = JSON.parse(call.function.arguments);
  if (call.function.name === 'get_weather') {
    assert.deepEqual(Object.keys(args).sort(), ['city', 'days']);
    assert.equal(typeof args.city, 'string');
    assert.ok(Number.isInteger(args.days));
  } else {
    assert.deepEqual(Object.keys(args), ['mood']);
    assert.ok(['happy', 'sad'].includes(args.mood));
  }
}

test('tool_choice "required": the reply is one call of a listed tool with matching arguments', async () => {
  for (const seed of [1, 2, 3, 4]) {
    const r = await client.chat.completions.create({ model: MODEL, messages, tools: TOOLS, tool_choice: 'required', seed, temperature: 1, max_tokens: 60 });
    const c = r.choices[0]!;
    assert.equal(c.finish_reason, 'tool_calls');
    assert.equal(c.message.content, null);
    assert.equal(c.message.tool_calls!.length, 1);
    assertCall(c.message.tool_calls![0] as any, ['get_weather', 'set_mood']);
  }
});

test("a function's parameters with $defs and $ref resolve inside the parameters, recursion included", async () => {
  // Two tools, each with its own "#/$defs/item": a ref resolves within the tool it is written in.
  const list = { type: 'object', additionalProperties: false, required: ['items'], properties: { items: { type: 'array', minItems: 1, maxItems: 2, items: { $ref: '#/$defs/item' } } }, $defs: { item: { type: 'object', additionalProperties: false, required: ['label', 'sub'], properties: { label: { type: 'string', maxLength: 5 }, sub: { type: 'array', maxItems: 1, items: { $ref: '#/$defs/item' } } } } } };
  const count = { type: 'object', additionalProperties: false, required: ['n'], properties: { n: { $ref: '#/$defs/item' } }, $defs: { item: { type: 'integer', minimum: 3, maximum: 7 } } };
  const tools: OpenAI.Chat.Completions.ChatCompletionTool[] = [{ type: 'function', function: { name: 'make_list', parameters: list } }, { type: 'function', function: { name: 'count', parameters: count } }];
  for (const seed of [1, 2, 3, 4, 5, 6]) {
    const r = await client.chat.completions.create({ model: MODEL, messages, tools, tool_choice: 'required', seed, temperature: 1, max_tokens: 120 });
    const call = r.choices[0]!.message.tool_calls![0]! as { function: { name: string; arguments: string } };
    const args = JSON.parse(call.function.arguments);
    assert.ok(satisfies(args, call.function.name === 'count' ? count : list, true), `${call.function.name}: ${call.function.arguments}`);
  }
  for (const name of ['make_list', 'count']) {
    const r = await client.chat.completions.create({ model: MODEL, messages, tools, tool_choice: { type: 'function', function: { name } }, seed: 9, temperature: 1, max_tokens: 120 });
    const call = r.choices[0]!.message.tool_calls![0]! as { function: { name: string; arguments: string } };
    assert.equal(call.function.name, name);
    assert.ok(satisfies(JSON.parse(call.function.arguments), name === 'count' ? count : list, true), call.function.arguments);
  }
});

test('a named function is the one called; streamed, the call arrives as a tool_calls delta', async () => {
  const r = await client.chat.completions.create({ model: MODEL, messages, tools: TOOLS, tool_choice: { type: 'function', function: { name: 'set_mood' } }, seed: 5, temperature: 1, max_tokens: 60 });
  assertCall(r.choices[0]!.message.tool_calls![0] as any, ['set_mood']);
  const stream = await client.chat.completions.create({ model: MODEL, messages, tools: TOOLS, tool_choice: { type: 'function', function: { name: 'get_weather' } }, seed: 6, temperature: 1, max_tokens: 60, stream: true });
  const calls: any[] = [];
  let finish: string | null = null;
  for await (const chunk of stream) {
    const c = chunk.choices[0];
    if (c?.delta.tool_calls) calls.push(...c.delta.tool_calls);
    if (c?.delta.content) assert.fail(`content in a forced call: ${c.delta.content}`);
    finish = c?.finish_reason ?? finish;
  }
  assert.equal(finish, 'tool_calls');
  assert.equal(calls.length, 1);
  assertCall(calls[0], ['get_weather']);
});

test('a conversation with a call and its result goes on; tool_choice "none" replies with text', async () => {
  const first = await client.chat.completions.create({ model: MODEL, messages, tools: TOOLS, tool_choice: 'required', seed: 1, max_tokens: 60 });
  const call = first.choices[0]!.message;
  const r = await client.chat.completions.create({
    model: MODEL, tools: TOOLS, tool_choice: 'none', max_tokens: 5,
    messages: [...messages, call, { role: 'tool', tool_call_id: call.tool_calls![0]!.id, content: 'Sunny.' }],
  });
  assert.equal(typeof r.choices[0]!.message.content, 'string');
  assert.equal(r.choices[0]!.message.tool_calls, undefined);
});

test('"auto" (the default with tools) without a known convention, an unknown named function and tools on /v1/completions are 400s naming the field', async () => {
  const auto = await postJson(`${s.url}/v1/chat/completions`, { messages, tools: TOOLS });
  assert.equal(auto.status, 400);
  assert.equal(auto.json.error.param, 'tool_choice');
  assert.match(auto.json.error.message, /known: Hermes-style <tool_call> tags/);
  const unknown = await postJson(`${s.url}/v1/chat/completions`, { messages, tools: TOOLS, tool_choice: { type: 'function', function: { name: 'fly' } } });
  assert.equal(unknown.status, 400);
  assert.equal(unknown.json.error.param, 'tool_choice');
  const legacy = await postJson(`${s.url}/v1/completions`, { prompt: 'x', tools: TOOLS });
  assert.equal(legacy.status, 400);
  assert.equal(legacy.json.error.param, 'tools');
});
