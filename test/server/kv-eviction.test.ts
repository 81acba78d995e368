// kv_policy / kv_budget over HTTP: a conversation longer than the context runs under "sinks" (a context
// shift) instead of failing, the openai client sends the fields as extra body keys, usage.kv_eviction
// says what was evicted, and bad values are 400s naming the field.
import assert from 'node:assert/strict';
import { after, before, test } from 'node:test';
import OpenAI from 'openai';
import { MODEL, postJson, startServer, type TestServer } from './helpers.js';

let s: TestServer;
before(async () => {
  s = await startServer({}, { maxContext: 128 });
});
after(() => s.close());

// About 250 tokens of conversation: twice the context.
const longChat = Array.from({ length: 6 }, (_, i) => [
  { role: 'user', content: `Tell me about the little girl and her red ball, part ${i}.` },
  { role: 'assistant', content: 'Once upon a time there was a little girl named Lily. She loved to play with her big red ball.' },
]).flat();

test('a chat longer than the context is a 400 without a policy, and answered with kv_policy "sinks"', async () => {
  const refused = await postJson(`${s.url}/v1/chat/completions`, { messages: longChat, max_tokens: 8 });
  assert.equal(refused.status, 400);
  assert.equal(refused.json.error.code, 'context_length_exceeded');
  const r = await postJson(`${s.url}/v1/chat/completions`, { messages: longChat, max_tokens: 8, kv_policy: 'sinks' });
  assert.equal(r.status, 200, r.text);
  assert.equal(r.json.usage.completion_tokens, 8);
  assert.ok(r.json.usage.prompt_tokens > 128);
  assert.equal(r.json.usage.kv_eviction.policy, 'sinks');
  assert.equal(r.json.usage.kv_eviction.budget, 128, 'the context, without kv_budget');
  assert.ok(r.json.usage.kv_eviction.evicted_tokens > r.json.usage.prompt_tokens - 128);
  const metrics = await (await fetch(`${s.url}/metrics`)).text();
  const evicted = Number(/^vserve:kv_evicted_tokens_total\{[^}]*\} (\d+)/m.exec(metrics)?.[1]);
  assert.ok(evicted >= r.json.usage.kv_eviction.evicted_tokens, metrics);
});

test('the openai client sends kv_policy and kv_budget as extra body fields; streaming usage carries kv_eviction', async () => {
  const client = new OpenAI({ baseURL: `${s.url}/v1`, apiKey: 'none' });
  // The client passes keys it does not know through in the body.
  const params = {
    model: MODEL, messages: [{ role: 'user', content: 'Once upon a time there was a little girl who loved to play in the park with her friends every day.' }],
    max_tokens: 6, stream: true, stream_options: { include_usage: true },
    kv_policy: 'snapkv', kv_budget: 16,
  } as OpenAI.ChatCompletionCreateParamsStreaming;
  const stream = await client.chat.completions.create(params);
  let usage: Record<string, unknown> | undefined;
  for await (const chunk of stream) usage = (chunk.usage as Record<string, unknown> | null) ?? usage;
  const eviction = usage?.kv_eviction as { policy: string; budget: number; evicted_tokens: number };
  assert.equal(eviction.policy, 'snapkv');
  assert.equal(eviction.budget, 16);
  assert.ok(eviction.evicted_tokens > 0);
});

test('bad kv_policy and kv_budget values are 400s naming the field', async () => {
  const body = { prompt: 'Once upon a time', max_tokens: 2 };
  const cases: [Record<string, unknown>, string, RegExp][] = [
    [{ kv_policy: 'lru' }, 'kv_policy', /must be one of none, sinks, h2o, tova, snapkv, chunkkv, pyramidkv/],
    [{ kv_policy: 3 }, 'kv_policy', /must be one of/],
    [{ kv_policy: 'h2o', kv_budget: -1 }, 'kv_budget', /kv_budget/],
    [{ kv_policy: 'h2o', kv_budget: 4 }, 'kv_budget', /at least 16/],
    [{ kv_policy: 'h2o', kv_budget: 'half' }, 'kv_budget', /must be a number/],
  ];
  for (const [fields, param, message] of cases) {
    const r = await postJson(`${s.url}/v1/completions`, { ...body, ...fields });
    assert.equal(r.status, 400, `${JSON.stringify(fields)} -> ${r.text}`);
    assert.equal(r.json.error.param, param, r.text);
    assert.match(r.json.error.message, message);
  }
  // "none" is the full cache, and so is leaving the fields out.
  const none = await postJson(`${s.url}/v1/completions`, { ...body, kv_policy: 'none' });
  assert.equal(none.status, 200);
  assert.equal(none.json.usage.kv_eviction, undefined);
});
