// The server end to end with the official openai npm package as the client: models, completions and
// chat, whole and streamed, logprobs, usage, stop strings, seeds, the API key and unknown models.
import assert from 'node:assert/strict';
import { after, before, test } from 'node:test';
import OpenAI from 'openai';
import { STORIES_GREEDY } from '../paths.js';
import { MODEL, startServer, type TestServer } from './helpers.js';

/** OpenAI's completion_tokens_details: vserve has no reasoning tokens or predicted outputs. */
const NO_DETAILS = { reasoning_tokens: 0, accepted_prediction_tokens: 0, rejected_prediction_tokens: 0 };

let s: TestServer;
let client: OpenAI;
before(async () => {
  s = await startServer({ apiKey: 'sk-test' });
  client = new OpenAI({ baseURL: `${s.url}/v1`, apiKey: 'sk-test', maxRetries: 0 });
});
after(() => s.close());

test('GET /v1/models lists the served model', async () => {
  const models = await client.models.list();
  assert.deepEqual(models.data.map((m) => [m.id, m.object, m.owned_by]), [[MODEL, 'model', 'vserve']]);
  assert.equal((await client.models.retrieve(MODEL)).id, MODEL);
});

test('completions: the known greedy text, with usage and OpenAI shapes', async () => {
  const r = await client.completions.create({ model: MODEL, prompt: 'Once upon a time', max_tokens: 30, temperature: 0 });
  assert.match(r.id, /^cmpl-/);
  assert.equal(r.object, 'text_completion');
  assert.equal(r.model, MODEL);
  assert.ok(Number.isInteger(r.created));
  assert.equal(r.choices.length, 1);
  const c = r.choices[0]!;
  assert.equal(c.index, 0);
  assert.equal(c.finish_reason, 'length');
  assert.equal(c.logprobs, null);
  assert.ok(STORIES_GREEDY.startsWith(c.text) && c.text.length > 60, c.text);
  assert.deepEqual(r.usage, { prompt_tokens: 5, completion_tokens: 30, total_tokens: 35, prompt_tokens_details: { cached_tokens: 0 }, completion_tokens_details: NO_DETAILS });
});

test('completions streamed: the same text, a finish chunk, the usage chunk, [DONE]', async () => {
  const whole = await client.completions.create({ model: MODEL, prompt: 'Once upon a time', max_tokens: 25, temperature: 0 });
  const stream = await client.completions.create({ model: MODEL, prompt: 'Once upon a time', max_tokens: 25, temperature: 0, stream: true, stream_options: { include_usage: true } });
  let text = '';
  const finishes: (string | null)[] = [];
  let usage: unknown;
  let chunks = 0;
  for await (const chunk of stream) {
    chunks++;
    assert.equal(chunk.object, 'text_completion');
    if (chunk.usage) usage = chunk.usage;
    for (const c of chunk.choices) {
      text += c.text;
      finishes.push(c.finish_reason);
    }
  }
  assert.ok(chunks > 5, 'tokens arrive in many chunks');
  assert.equal(text, whole.choices[0]!.text);
  assert.equal(finishes.at(-1), 'length');
  assert.ok(finishes.slice(0, -1).every((f) => f === null));
  assert.deepEqual(usage, { prompt_tokens: 5, completion_tokens: 25, total_tokens: 30, prompt_tokens_details: { cached_tokens: 0 }, completion_tokens_details: NO_DETAILS });
});

test('chat: the template-rendered prompt, assistant message, usage', async () => {
  const r = await client.chat.completions.create({
    model: MODEL,
    messages: [{ role: 'system', content: 'You tell stories.' }, { role: 'user', content: 'Tell me about Lily.' }],
    max_completion_tokens: 12,
    temperature: 0,
  });
  assert.match(r.id, /^chatcmpl-/);
  assert.equal(r.object, 'chat.completion');
  const c = r.choices[0]!;
  assert.equal(c.message.role, 'assistant');
  assert.equal(typeof c.message.content, 'string');
  assert.equal(c.finish_reason, 'length');
  assert.equal(r.usage!.completion_tokens, 12);
  assert.ok(r.usage!.prompt_tokens > 8);
});

test('chat streamed: the first chunk carries the role; text equals the whole response', async () => {
  const messages = [{ role: 'user' as const, content: 'Once upon a time' }];
  const whole = await client.chat.completions.create({ model: MODEL, messages, max_tokens: 20, temperature: 0 });
  const stream = await client.chat.completions.create({ model: MODEL, messages, max_tokens: 20, temperature: 0, stream: true });
  const chunks = [];
  for await (const chunk of stream) chunks.push(chunk);
  assert.equal(chunks[0]!.object, 'chat.completion.chunk');
  assert.equal(chunks[0]!.choices[0]!.delta.role, 'assistant');
  assert.equal(chunks.map((c) => c.choices[0]?.delta.content ?? '').join(''), whole.choices[0]!.message.content);
  assert.equal(chunks.at(-1)!.choices[0]!.finish_reason, 'length');
  assert.ok(chunks.every((c) => c.usage === undefined), 'no usage without stream_options.include_usage');
});

test('logprobs: chat top_logprobs and the legacy completions arrays', async () => {
  const chat = await client.chat.completions.create({
    model: MODEL, messages: [{ role: 'user', content: 'Hi' }], max_tokens: 4, temperature: 0, logprobs: true, top_logprobs: 3,
  });
  const content = chat.choices[0]!.logprobs!.content!;
  assert.equal(content.length, 4);
  for (const t of content) {
    assert.ok(t.logprob <= 0);
    assert.equal(t.top_logprobs.length, 3);
    // Greedy: the chosen token is the most likely one.
    assert.equal(t.top_logprobs[0]!.token, t.token);
    assert.deepEqual(t.bytes, [...Buffer.from(t.token)]);
  }
  const comp = await client.completions.create({ model: MODEL, prompt: 'Once upon a time', max_tokens: 3, temperature: 0, logprobs: 2 });
  const lp = comp.choices[0]!.logprobs!;
  assert.equal(lp.tokens!.join(''), comp.choices[0]!.text);
  assert.equal(lp.token_logprobs!.length, 3);
  assert.deepEqual(lp.text_offset, [0, lp.tokens![0]!.length, lp.tokens![0]!.length + lp.tokens![1]!.length]);
  assert.ok(lp.top_logprobs!.every((alts) => Object.keys(alts).length === 2));
});

test('sampling fields: a seed repeats, stop strings end the text', async () => {
  const params = { model: MODEL, prompt: 'Once upon a time', max_tokens: 20, temperature: 1, top_p: 0.9, top_k: 40, seed: 7 } as const;
  const a = await client.completions.create(params);
  const b = await client.completions.create(params);
  assert.equal(a.choices[0]!.text, b.choices[0]!.text);
  const stopped = await client.completions.create({ model: MODEL, prompt: 'Once upon a time', max_tokens: 60, temperature: 0, stop: ['Lily'] });
  assert.equal(stopped.choices[0]!.text, STORIES_GREEDY.slice(0, STORIES_GREEDY.indexOf('Lily')));
  assert.equal(stopped.choices[0]!.finish_reason, 'stop');
  const penalised = await client.completions.create({
    model: MODEL, prompt: 'Once upon a time', max_tokens: 5, temperature: 0, presence_penalty: 0.5, frequency_penalty: 0.5,
    // Fields the SDK does not type pass straight through.
    ...({ repetition_penalty: 1.1, min_p: 0.05 } as object),
  });
  assert.equal(penalised.usage!.completion_tokens, 5);
});

test('a wrong API key is a 401, an unknown model a 404, both as OpenAI errors', async () => {
  const wrong = new OpenAI({ baseURL: `${s.url}/v1`, apiKey: 'nope', maxRetries: 0 });
  await assert.rejects(wrong.models.list(), (e: any) => e instanceof OpenAI.AuthenticationError && e.status === 401 && e.code === 'invalid_api_key');
  await assert.rejects(
    client.completions.create({ model: 'gpt-9', prompt: 'x' }),
    (e: any) => e instanceof OpenAI.NotFoundError && e.code === 'model_not_found' && e.param === 'model',
  );
  const missing = await fetch(`${s.url}/v1/models`);
  assert.equal(missing.status, 401);
  // The UI and health stay reachable without the key.
  assert.equal((await fetch(`${s.url}/health`)).status, 200);
  assert.match(await (await fetch(`${s.url}/`)).text(), /<title>vserve playground<\/title>/);
});

test('GET /metrics: Prometheus text with vLLM-style names', async () => {
  const text = await (await fetch(`${s.url}/metrics`)).text();
  for (const name of [
    'vserve:request_success_total{finished_reason="length"',
    'vserve:request_failure_total{reason="unauthorized"',
    'vserve:time_to_first_token_seconds_bucket',
    'vserve:time_per_output_token_seconds_bucket',
    'vserve:e2e_request_latency_seconds_bucket',
    'vserve:prompt_tokens_total',
    'vserve:generation_tokens_total',
    'vserve:num_requests_running',
    'vserve:num_requests_waiting',
    'vserve:kv_cache_pages_used',
    'vserve:kv_cache_pages_free',
    'vserve:num_preemptions_total',
  ]) {
    assert.ok(text.includes(name), `${name} in /metrics`);
  }
});
