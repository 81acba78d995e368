// tool_choice "auto" on templates in the Llama 3.x JSON and Mistral conventions, with scripted replies
// (ScriptedEngine) so what the server makes of each is known exactly: the triggered format each asks
// the engine for, the reply read as content plus calls, and the same when streamed.
import assert from 'node:assert/strict';
import { test } from 'node:test';
import OpenAI from 'openai';
import { MODEL, postJson, startWith } from './helpers.js';
import { ScriptedEngine } from './scripted-engine.js';
import type { EngineFinishReason } from '../../src/engine/engine-types.js';
import type { ToolCallConvention } from '../../src/model/tool-call-convention.js';
import { streamedChat } from './chat-stream.js';

const TOOLS: OpenAI.Chat.Completions.ChatCompletionTool[] = [
  { type: 'function', function: { name: 'get_weather', parameters: { type: 'object', required: ['city'], properties: { city: { type: 'string' } } } } },
  { type: 'function', function: { name: 'get_time', parameters: { type: 'object', properties: {} } } },
];
const messages: OpenAI.Chat.Completions.ChatCompletionMessageParam[] = [{ role: 'user', content: 'Weather and time in Oslo?' }];

async function serve(convention: ToolCallConvention | undefined, pieces: string[], finish: EngineFinishReason = 'stop') {
  const engine = new ScriptedEngine(pieces, finish, convention ? { toolCalls: convention } : {});
  const s = await startWith(engine);
  const client = new OpenAI({ baseURL: `${s.url}/v1`, apiKey: 'x', maxRetries: 0 });
  return { engine, client, url: s.url, close: s.close };
}

const streamed = (client: OpenAI) => streamedChat(client, { model: MODEL, messages, tools: TOOLS });

const callsOf = (calls: readonly { function?: { name?: string; arguments?: string } }[]) => calls.map((c) => [c.function!.name, JSON.parse(c.function!.arguments!)]);

test('Llama 3.x: the engine is asked for calls that open with "{" at the reply\'s start, with "parameters", closed by the document\'s end', async () => {
  const s = await serve('llama-json', ['Hi.']);
  try {
    await s.client.chat.completions.create({ model: MODEL, messages, tools: TOOLS });
    const f = s.engine.requests[0]!.triggeredFormat!;
    assert.deepEqual([f.trigger, f.close, f.triggerInDocument, f.gap], ['{', '', true, ' \t\r\n;']);
    const schema = (f.format as { schema: { anyOf: { required: string[] }[] } }).schema;
    assert.deepEqual(schema.anyOf.map((o) => o.required), [['name', 'parameters'], ['name', 'parameters']]);
  } finally {
    await s.close();
  }
});

test('Llama 3.x: a reply of calls is message.tool_calls with null content, whole or streamed; the leading blank never goes out', async () => {
  const s = await serve('llama-json', ['\n', '{"name": "get_weather", "parameters": {"city": "Oslo"}}', '; {"name": "get_time", ', '"parameters": {}}']);
  try {
    const r = await s.client.chat.completions.create({ model: MODEL, messages, tools: TOOLS });
    assert.equal(r.choices[0]!.finish_reason, 'tool_calls');
    assert.equal(r.choices[0]!.message.content, null);
    assert.deepEqual(callsOf(r.choices[0]!.message.tool_calls as OpenAI.Chat.Completions.ChatCompletionMessageFunctionToolCall[]), [['get_weather', { city: 'Oslo' }], ['get_time', {}]]);
    const st = await streamed(s.client);
    assert.deepEqual(st.contents, []);
    assert.deepEqual(st.calls.map((c) => c.index), [0, 1]);
    assert.deepEqual(callsOf(st.calls), [['get_weather', { city: 'Oslo' }], ['get_time', {}]]);
    assert.ok(st.calls.every((c) => /^call_/.test(c.id!)));
    assert.equal(st.finish, 'tool_calls');
  } finally {
    await s.close();
  }
});

test('Llama 3.x: a reply that starts with text streams as it comes, "{" later in it included; a cut call is text', async () => {
  const text = await serve('llama-json', [' ', 'Use {', '"name": 1}', ' here']);
  try {
    const st = await streamed(text.client);
    // The blank start waits until "Use" shows the reply is text; then everything goes out as it comes.
    assert.deepEqual(st.contents, [' Use {', '"name": 1}', ' here']);
    assert.equal(st.calls.length, 0);
    assert.equal(st.finish, 'stop');
  } finally {
    await text.close();
  }
  const cut = await serve('llama-json', ['{"name": "get_weather", "param'], 'length');
  try {
    const r = await cut.client.chat.completions.create({ model: MODEL, messages, tools: TOOLS });
    assert.equal(r.choices[0]!.finish_reason, 'length');
    assert.equal(r.choices[0]!.message.content, '{"name": "get_weather", "param');
    const st = await streamed(cut.client);
    assert.equal(st.contents.join(''), '{"name": "get_weather", "param');
    assert.equal(st.finish, 'length');
  } finally {
    await cut.close();
  }
});

test('Mistral: the engine is asked for a [TOOL_CALLS] array of calls; the reply\'s calls get 9-character ids, text before them streams', async () => {
  const s = await serve('mistral', ['Let me look.', '[TOOL', '_CALLS] [{"name": "get_weather", "arguments": {"city": "Oslo"}}, ', '{"name": "get_time", "arguments": {}}]']);
  try {
    await s.client.chat.completions.create({ model: MODEL, messages, tools: TOOLS }).then((r) => {
      assert.equal(r.choices[0]!.message.content, 'Let me look.');
      assert.deepEqual(callsOf(r.choices[0]!.message.tool_calls as OpenAI.Chat.Completions.ChatCompletionMessageFunctionToolCall[]), [['get_weather', { city: 'Oslo' }], ['get_time', {}]]);
      for (const c of r.choices[0]!.message.tool_calls!) assert.match(c.id, /^[A-Za-z0-9]{9}$/);
    });
    const f = s.engine.requests[0]!.triggeredFormat!;
    assert.deepEqual([f.trigger, f.close], ['[TOOL_CALLS]', '']);
    const schema = (f.format as { schema: { type: string; minItems: number; items: { anyOf: unknown[] } } }).schema;
    assert.deepEqual([schema.type, schema.minItems, schema.items.anyOf.length], ['array', 1, 2]);
    const st = await streamed(s.client);
    // "[TOOL" waits with the text before it; the text goes out, the marker never does.
    assert.deepEqual(st.contents, ['Let me look.']);
    assert.deepEqual(callsOf(st.calls), [['get_weather', { city: 'Oslo' }], ['get_time', {}]]);
    assert.equal(st.finish, 'tool_calls');
  } finally {
    await s.close();
  }
});

test('a template with no known convention: "auto" is a 400 that names all three conventions', async () => {
  const s = await serve(undefined, ['x']);
  try {
    const r = await postJson(`${s.url}/v1/chat/completions`, { messages, tools: TOOLS });
    assert.equal(r.status, 400);
    assert.equal(r.json.error.param, 'tool_choice');
    assert.match(r.json.error.message, /<tool_call> tags.*Llama 3\.x JSON.*Mistral \[TOOL_CALLS\]/);
  } finally {
    await s.close();
  }
});
