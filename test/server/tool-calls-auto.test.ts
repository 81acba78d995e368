// tool_choice "auto" on a model whose chat template uses Hermes-style <tool_call> tags: the server asks
// the engine to constrain each call from its opening tag on, and reads the reply as text plus calls.
// The replies here are scripted (ScriptedEngine), so what the server makes of each is known exactly;
// the constraint itself is tested on the bundled model in test/constrained/triggered-constraint.test.ts.
import assert from 'node:assert/strict';
import { test } from 'node:test';
import OpenAI from 'openai';
import { MODEL, postJson, startWith } from './helpers.js';
import { ScriptedEngine } from './scripted-engine.js';
import type { EngineFinishReason } from '../../src/engine/engine-types.js';
import { streamedChat } from './chat-stream.js';

const TOOLS: OpenAI.Chat.Completions.ChatCompletionTool[] = [
  { type: 'function', function: { name: 'get_weather', parameters: { type: 'object', required: ['city'], properties: { city: { type: 'string' } } } } },
  { type: 'function', function: { name: 'get_time', parameters: { type: 'object', properties: {} } } },
];
const messages: OpenAI.Chat.Completions.ChatCompletionMessageParam[] = [{ role: 'user', content: 'Weather and time in Oslo?' }];

const TWO_CALLS = [
  'Let me check.\n<tool', '_call>\n{"name": "get_weather", "arguments": {"city": "Oslo"}}\n</tool_call>\n',
  '<tool_call>\n{"name": "get_time", "arguments": {}}\n</tool_call>',
];

async function serve(pieces: string[], finish: EngineFinishReason = 'stop') {
  const engine = new ScriptedEngine(pieces, finish, { toolCalls: 'hermes' });
  const s = await startWith(engine);
  const client = new OpenAI({ baseURL: `${s.url}/v1`, apiKey: 'x', maxRetries: 0 });
  return { engine, client, url: s.url, close: s.close };
}

const streamed = (client: OpenAI, extra: Partial<OpenAI.Chat.Completions.ChatCompletionCreateParamsStreaming> = {}) =>
  streamedChat(client, { model: MODEL, messages, tools: TOOLS, ...extra });

test('the engine is asked to constrain calls from <tool_call> to </tool_call>, with the tools for the template', async () => {
  const s = await serve(['Hello.']);
  try {
    await s.client.chat.completions.create({ model: MODEL, messages, tools: TOOLS });
    const p = s.engine.requests[0]!;
    assert.equal(p.triggeredFormat?.trigger, '<tool_call>');
    assert.equal(p.triggeredFormat?.close, '</tool_call>');
    assert.equal(p.responseFormat, undefined);
    assert.deepEqual(p.tools, TOOLS);
    // "required" keeps the whole reply one call, without tags.
    await s.client.chat.completions.create({ model: MODEL, messages, tools: TOOLS, tool_choice: 'required' });
    assert.equal(s.engine.requests[1]!.triggeredFormat, undefined);
    assert.equal(s.engine.requests[1]!.responseFormat?.type, 'json_schema');
  } finally {
    await s.close();
  }
});

test('a reply with calls comes back as message.tool_calls, the text before them as content', async () => {
  const s = await serve(TWO_CALLS);
  try {
    const r = await s.client.chat.completions.create({ model: MODEL, messages, tools: TOOLS });
    const c = r.choices[0]!;
    assert.equal(c.finish_reason, 'tool_calls');
    assert.equal(c.message.content, 'Let me check.\n');
    const calls = c.message.tool_calls as OpenAI.Chat.Completions.ChatCompletionMessageFunctionToolCall[];
    assert.deepEqual(calls.map((t) => [t.type, t.function.name, JSON.parse(t.function.arguments)]), [
      ['function', 'get_weather', { city: 'Oslo' }],
      ['function', 'get_time', {}],
    ]);
    assert.equal(typeof calls[0]!.function.arguments, 'string');
    assert.match(calls[0]!.id, /^call_/);
    assert.notEqual(calls[0]!.id, calls[1]!.id);
  } finally {
    await s.close();
  }
});

test('a reply that is only calls has null content; one without a call is plain text', async () => {
  const only = await serve(['<tool_call>\n{"name": "get_time", "arguments": {}}\n</tool_call>']);
  try {
    const r = await only.client.chat.completions.create({ model: MODEL, messages, tools: TOOLS });
    assert.equal(r.choices[0]!.message.content, null);
    assert.equal(r.choices[0]!.message.tool_calls!.length, 1);
  } finally {
    await only.close();
  }
  const text = await serve(['It is ', 'sunny <3']);
  try {
    const r = await text.client.chat.completions.create({ model: MODEL, messages, tools: TOOLS });
    assert.equal(r.choices[0]!.finish_reason, 'stop');
    assert.equal(r.choices[0]!.message.content, 'It is sunny <3');
    assert.equal(r.choices[0]!.message.tool_calls, undefined);
  } finally {
    await text.close();
  }
});

test('a call cut short (max_tokens) leaves the whole reply as text, with the engine\'s finish reason', async () => {
  const s = await serve(['Checking <tool_call>\n{"name": "get_weather", "argu'], 'length');
  try {
    const r = await s.client.chat.completions.create({ model: MODEL, messages, tools: TOOLS });
    assert.equal(r.choices[0]!.finish_reason, 'length');
    assert.equal(r.choices[0]!.message.content, 'Checking <tool_call>\n{"name": "get_weather", "argu');
    assert.equal(r.choices[0]!.message.tool_calls, undefined);
    const st = await streamed(s.client);
    assert.equal(st.contents.join(''), 'Checking <tool_call>\n{"name": "get_weather", "argu');
    assert.equal(st.calls.length, 0);
    assert.equal(st.finish, 'length');
  } finally {
    await s.close();
  }
});

test('streamed: content before the call goes out, a tag split across deltas never does, then one delta per call', async () => {
  const s = await serve(TWO_CALLS);
  try {
    const st = await streamed(s.client);
    // "<tool" arrives with the text before it: that text goes out, the part of the tag waits, and turns out to be one.
    assert.deepEqual(st.contents, ['Let me check.\n']);
    assert.deepEqual(st.calls.map((c) => [c.index, c.function?.name, JSON.parse(c.function!.arguments!)]), [
      [0, 'get_weather', { city: 'Oslo' }],
      [1, 'get_time', {}],
    ]);
    assert.ok(st.calls.every((c) => c.type === 'function' && /^call_/.test(c.id!)));
    assert.equal(st.finish, 'tool_calls');
  } finally {
    await s.close();
  }
});

test('streamed: text that only looked like the start of a tag is held back until it is known not to be, then sent', async () => {
  const s = await serve(['Use <', 'tool', 's> or <b>', ' here']);
  try {
    const st = await streamed(s.client);
    assert.equal(st.contents.join(''), 'Use <tools> or <b> here');
    // Nothing of "<tool" went out before "s>" showed it was not the tag.
    assert.deepEqual(st.contents.slice(0, 2), ['Use ', '<tools> or <b>']);
    assert.equal(st.calls.length, 0);
    assert.equal(st.finish, 'stop');
  } finally {
    await s.close();
  }
});

test('"auto" with parallel_tool_calls false or with response_format is refused, naming the field', async () => {
  const s = await serve(['x']);
  try {
    const parallel = await postJson(`${s.url}/v1/chat/completions`, { messages, tools: TOOLS, parallel_tool_calls: false });
    assert.equal(parallel.status, 400);
    assert.equal(parallel.json.error.param, 'parallel_tool_calls');
    const format = await postJson(`${s.url}/v1/chat/completions`, { messages, tools: TOOLS, response_format: { type: 'json_object' } });
    assert.equal(format.status, 400);
    assert.equal(format.json.error.param, 'response_format');
    assert.equal(s.engine.requests.length, 0);
  } finally {
    await s.close();
  }
});
