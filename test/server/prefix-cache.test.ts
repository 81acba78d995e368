// The prefix cache through the OpenAI API (the openai npm client): cached_tokens in usage, whole and
// streamed; cache_salt; n choices from one prompt; the prefix-cache counters in /metrics; and the
// --no-prefix-cache switch of the library options.
import assert from 'node:assert/strict';
import { after, before, test } from 'node:test';
import OpenAI from 'openai';
import { STORIES_GREEDY } from '../paths.js';
import { MODEL, startServer, type TestServer } from './helpers.js';

let s: TestServer;
let client: OpenAI;
before(async () => {
  s = await startServer();
  client = new OpenAI({ baseURL: `${s.url}/v1`, apiKey: 'none', maxRetries: 0 });
});
after(() => s.close());

/** A prompt of well over one cache block (106 tokens; a 4 KiB page holds 64 of this model's f16 rows). */
const LONG = `Once upon a time${STORIES_GREEDY}`;
type CachedUsage = { prompt_tokens: number; prompt_tokens_details?: { cached_tokens?: number } };
const cachedOf = (u: unknown) => (u as CachedUsage).prompt_tokens_details?.cached_tokens;

test('a repeated prompt reports cached_tokens, whole and streamed, and the same text', async () => {
  const first = await client.completions.create({ model: MODEL, prompt: LONG, max_tokens: 12, temperature: 0 });
  assert.equal(cachedOf(first.usage), 0);
  const again = await client.completions.create({ model: MODEL, prompt: LONG, max_tokens: 12, temperature: 0 });
  const cached = cachedOf(again.usage)!;
  assert.ok(cached > 0 && cached < again.usage!.prompt_tokens, `cached ${cached} of ${again.usage!.prompt_tokens}`);
  assert.equal(again.choices[0]!.text, first.choices[0]!.text);
  const stream = await client.completions.create({ model: MODEL, prompt: LONG, max_tokens: 12, temperature: 0, stream: true, stream_options: { include_usage: true } });
  let text = '';
  let usage: unknown;
  for await (const chunk of stream) {
    text += chunk.choices.map((c) => c.text).join('');
    if (chunk.usage) usage = chunk.usage;
  }
  assert.equal(text, first.choices[0]!.text);
  assert.equal(cachedOf(usage), cached);
  const metrics = await (await fetch(`${s.url}/metrics`)).text();
  const counter = (name: string) => Number(new RegExp(`^vserve:${name}\\{[^}]*\\} (\\d+)`, 'm').exec(metrics)?.[1]);
  assert.ok(counter('prefix_cache_hits_total') >= 2 * cached, metrics);
  assert.ok(counter('prefix_cache_queries_total') >= 3 * first.usage!.prompt_tokens);
  assert.match(metrics, /^vserve:kv_cache_pages_held\{/m);
  // The cache's configuration: the default formats and what a token costs in them.
  assert.match(metrics, /^vserve:cache_config_info\{[^}]*cache_type_k="f16",cache_type_v="f16",[^}]*bytes_per_token="\d+"[^}]*\} 1$/m);
});

test('cache_salt keeps tenants apart (an extra body field the openai client sends)', async () => {
  const prompt = `${LONG} The sun was warm.`;
  const ask = (salt: string) =>
    client.completions.create({ model: MODEL, prompt, max_tokens: 2, temperature: 0, cache_salt: salt } as OpenAI.CompletionCreateParamsNonStreaming);
  assert.equal(cachedOf((await ask('tenant-a')).usage), 0);
  assert.equal(cachedOf((await ask('tenant-b')).usage), 0);
  assert.ok(cachedOf((await ask('tenant-a')).usage)! > 0);
});

test('n choices: chat and completions, whole and streamed, one usage for the prompt', async () => {
  const chat = await client.chat.completions.create({ model: MODEL, messages: [{ role: 'user', content: 'Tell me a story' }], max_tokens: 10, temperature: 0, n: 3 });
  assert.deepEqual(chat.choices.map((c) => c.index), [0, 1, 2]);
  assert.equal(new Set(chat.choices.map((c) => c.message.content)).size, 1, 'greedy choices agree');
  assert.equal(chat.usage!.completion_tokens, 30);
  const stream = await client.completions.create({ model: MODEL, prompt: 'Once upon a time', max_tokens: 16, temperature: 1, seed: 3, n: 2, stream: true, stream_options: { include_usage: true } });
  const texts = ['', ''];
  const finishes: (string | null)[][] = [[], []];
  let usage: OpenAI.CompletionUsage | undefined;
  for await (const chunk of stream) {
    for (const c of chunk.choices) {
      texts[c.index] += c.text;
      finishes[c.index]!.push(c.finish_reason);
    }
    usage ??= chunk.usage ?? undefined;
  }
  assert.equal(finishes[0]!.at(-1), 'length');
  assert.equal(finishes[1]!.at(-1), 'length');
  assert.notEqual(texts[0], texts[1], 'sampled choices differ');
  assert.deepEqual([usage!.prompt_tokens, usage!.completion_tokens], [5, 32]);
  // Choice 1 of seed 3 samples as choice 0 of seed 4 does.
  const alone = await client.completions.create({ model: MODEL, prompt: 'Once upon a time', max_tokens: 16, temperature: 1, seed: 4 });
  assert.equal(alone.choices[0]!.text, texts[1]);
});
