// OpenAI request fields vserve does not implement are refused with a 400 naming the field, never
// accepted and ignored; so is any unknown key. What the openai client sends, and the values that mean
// what vserve does anyway, still pass.
import assert from 'node:assert/strict';
import { after, before, test } from 'node:test';
import OpenAI from 'openai';
import { MODEL, postJson, startServer, type TestServer } from './helpers.js';

let s: TestServer;
before(async () => {
  s = await startServer();
});
after(() => s.close());

const chat = { messages: [{ role: 'user', content: 'Hi' }], max_tokens: 2 };
const completion = { prompt: 'Once', max_tokens: 2 };

async function assertRefused(path: string, body: object, param: string) {
  const r = await postJson(`${s.url}${path}`, body);
  assert.equal(r.status, 400, `${JSON.stringify(body)} -> ${r.text}`);
  assert.equal(r.json.error.param, param);
  assert.equal(r.json.error.type, 'invalid_request_error');
  assert.match(r.json.error.message, new RegExp(`'${param.replace(/[[\]]/g, '\\$&')}'`));
}

test('each unimplemented chat field is a 400 naming it', async () => {
  const fields: Record<string, unknown> = {
    functions: [{ name: 'f' }], function_call: 'auto', audio: { voice: 'alloy', format: 'wav' },
    modalities: ['text', 'audio'], prediction: { type: 'content', content: 'x' }, service_tier: 'flex', store: true,
    metadata: { a: 'b' }, reasoning_effort: 'low', web_search_options: {},
  };
  for (const [field, value] of Object.entries(fields)) {
    const r = await postJson(`${s.url}/v1/chat/completions`, { ...chat, [field]: value });
    assert.equal(r.json.error.code, 'unsupported_parameter', `${field}: ${r.text}`);
    await assertRefused('/v1/chat/completions', { ...chat, [field]: value }, field);
  }
});

test('best_of, suffix and tools are refused on completions', async () => {
  await assertRefused('/v1/completions', { ...completion, tools: [{ type: 'function', function: { name: 'f' } }] }, 'tools');
  await assertRefused('/v1/completions', { ...completion, parallel_tool_calls: false }, 'parallel_tool_calls');
  await assertRefused('/v1/completions', { ...completion, best_of: 3 }, 'best_of');
  await assertRefused('/v1/completions', { ...completion, suffix: ' the end' }, 'suffix');
});

test('an unknown key is a 400 naming it, at the top level and inside a message', async () => {
  await assertRefused('/v1/completions', { ...completion, temprature: 0 }, 'temprature');
  await assertRefused('/v1/chat/completions', { ...chat, frobnicate: 1 }, 'frobnicate');
  const r = await postJson(`${s.url}/v1/chat/completions`, { ...chat, max_tokenz: 1 });
  assert.equal(r.json.error.code, 'unknown_parameter');
  await assertRefused('/v1/chat/completions', { messages: [{ role: 'user', content: 'Hi', mood: 'x' }] }, 'messages[0].mood');
  // The chat-only fields are unknown to the legacy endpoint.
  await assertRefused('/v1/completions', { ...completion, messages: [] }, 'messages');
});

test("values that mean vserve's own behaviour are accepted, as are user, cache_salt and n", async () => {
  const ok = [
    { ...chat, store: false, parallel_tool_calls: true, modalities: ['text'], tool_choice: 'none', tools: [], service_tier: 'auto', user: 'u1' },
    { ...chat, cache_salt: 'tenant', n: 2, metadata: null, audio: null },
  ];
  for (const body of ok) {
    const r = await postJson(`${s.url}/v1/chat/completions`, body);
    assert.equal(r.status, 200, r.text);
  }
  const r = await postJson(`${s.url}/v1/completions`, { ...completion, best_of: 1, user: 'u1', suffix: null });
  assert.equal(r.status, 200, r.text);
  // A response's assistant message, sent back in the next request as many clients do.
  const first = await postJson(`${s.url}/v1/chat/completions`, chat);
  const again = await postJson(`${s.url}/v1/chat/completions`, { ...chat, messages: [...chat.messages, first.json.choices[0].message, { role: 'user', content: 'More' }] });
  assert.equal(again.status, 200, again.text);
  await assertRefused('/v1/chat/completions', { messages: [{ role: 'assistant', content: null, tool_calls: [{ id: 'c', type: 'function', function: { name: 'f' } }] }] }, 'messages[0].tool_calls[0].function.arguments');
});

test('the openai client with its defaults and common options is accepted', async () => {
  const client = new OpenAI({ baseURL: `${s.url}/v1`, apiKey: 'x', maxRetries: 0 });
  const r = await client.chat.completions.create({
    model: MODEL, messages: [{ role: 'system', content: 'Be brief.' }, { role: 'user', content: [{ type: 'text', text: 'Hi' }] }],
    max_completion_tokens: 3, temperature: 0.5, top_p: 0.9, seed: 1, stop: ['\n'], logprobs: true, top_logprobs: 2, n: 1, user: 'me',
    presence_penalty: 0.1, frequency_penalty: 0.1, stream: false,
  });
  assert.equal(r.choices.length, 1);
  const c = await client.completions.create({ model: MODEL, prompt: 'Once', max_tokens: 2, logprobs: 1, echo: false, user: 'me' });
  assert.equal(c.choices.length, 1);
  await assert.rejects(client.chat.completions.create({ model: MODEL, messages: [{ role: 'user', content: 'Hi' }], store: true }), { status: 400 });
});
