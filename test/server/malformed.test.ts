// Raw malformed requests: bad JSON, wrong types in every field, out-of-range values, huge bodies,
// unknown routes, a full queue. Each gets OpenAI's error JSON with the right status and field; none a 500.
import assert from 'node:assert/strict';
import { after, before, test } from 'node:test';
import type { EngineDelta, EngineStats } from '../../src/engine/engine-types.js';
import { postJson, startServer, startWith, type TestServer } from './helpers.js';

let s: TestServer;
before(async () => {
  s = await startServer({ bodyLimit: 64 * 1024 });
});
after(() => s.close());

function assertError(r: { status: number; json: any }, status: number, param: string | null) {
  assert.equal(r.status, status, JSON.stringify(r.json));
  assert.deepEqual(Object.keys(r.json.error).sort(), ['code', 'message', 'param', 'type']);
  assert.equal(typeof r.json.error.message, 'string');
  assert.equal(r.json.error.param, param);
}

test('bad JSON, an empty body and a non-object body are 400s', async () => {
  for (const body of ['{"prompt": "x",', 'not json', '[1, 2]', '"text"', 'null']) {
    assertError(await postJson(`${s.url}/v1/completions`, body), 400, null);
  }
  const empty = await fetch(`${s.url}/v1/chat/completions`, { method: 'POST' });
  assert.equal(empty.status, 400);
});

const WRONG = [null, true, 'x', -1, 1.5, 1e9, [], {}, [1, 'a'], ''];
const COMPLETION_FIELDS = ['prompt', 'max_tokens', 'temperature', 'top_p', 'top_k', 'min_p', 'seed', 'stop', 'presence_penalty', 'frequency_penalty', 'repetition_penalty', 'n', 'stream', 'stream_options', 'logprobs', 'echo', 'model'];
const CHAT_FIELDS = ['messages', 'max_tokens', 'max_completion_tokens', 'temperature', 'top_p', 'logprobs', 'top_logprobs', 'stop', 'seed', 'n', 'stream'];

test('fuzz: wrong types and out-of-range values in every field are never a 500', async () => {
  let rejected = 0;
  const cases: [string, Record<string, unknown>, string][] = [];
  for (const field of COMPLETION_FIELDS) for (const v of WRONG) cases.push(['/v1/completions', { prompt: 'Once', max_tokens: 2, [field]: v }, field]);
  for (const field of CHAT_FIELDS) for (const v of WRONG) cases.push(['/v1/chat/completions', { messages: [{ role: 'user', content: 'Hi' }], max_tokens: 2, [field]: v }, field]);
  for (const [path, body, field] of cases) {
    const r = await postJson(`${s.url}${path}`, body);
    assert.ok(r.status < 500, `${path} ${JSON.stringify(body)} -> ${r.status} ${r.text}`);
    if (r.status === 400) {
      rejected++;
      assert.ok(r.json.error.param === null || r.json.error.param.startsWith(field) || r.json.error.param === 'model', `${field}: ${r.text}`);
    } else if (r.status === 404) {
      assert.equal(field, 'model');
    } else {
      assert.equal(r.status, 200, r.text);
    }
  }
  assert.ok(rejected > cases.length / 2);
});

test('each invalid field is named in the 400', async () => {
  const url = `${s.url}/v1/completions`;
  assertError(await postJson(url, { prompt: 'x', temperature: 3 }), 400, 'temperature');
  assertError(await postJson(url, { prompt: 'x', top_p: 0 }), 400, 'top_p');
  assertError(await postJson(url, { prompt: 'x', max_tokens: 'ten' }), 400, 'max_tokens');
  assertError(await postJson(url, { prompt: 'x', n: 0 }), 400, 'n');
  assertError(await postJson(url, { prompt: 'x', n: 17 }), 400, 'n');
  assertError(await postJson(url, { prompt: 'x', cache_salt: '' }), 400, 'cache_salt');
  assertError(await postJson(url, { prompt: 'x', stop: [''] }), 400, 'stop[0]');
  assertError(await postJson(url, { prompt: [1, -5] }), 400, 'prompt[1]');
  assertError(await postJson(url, {}), 400, 'prompt');
  assertError(await postJson(`${s.url}/v1/chat/completions`, { messages: [{ role: 'wizard', content: 'x' }] }), 400, 'messages[0].role');
  assertError(await postJson(`${s.url}/v1/chat/completions`, { messages: [{ role: 'user', content: 5 }] }), 400, 'messages[0].content');
  assertError(await postJson(`${s.url}/v1/chat/completions`, { messages: [] }), 400, 'messages');
});

test('what only the engine can check is a 400 too: a prompt past the context, token ids outside the vocabulary', async () => {
  const long = await postJson(`${s.url}/v1/completions`, { prompt: 'Once upon a time '.repeat(200) });
  assertError(long, 400, 'prompt');
  assert.equal(long.json.error.code, 'context_length_exceeded');
  const streamed = await postJson(`${s.url}/v1/chat/completions`, { messages: [{ role: 'user', content: 'a b '.repeat(600) }], stream: true });
  assertError(streamed, 400, 'messages');
  assertError(await postJson(`${s.url}/v1/completions`, { prompt: [1, 999999] }), 400, 'prompt');
});

test('prompt plus max_tokens past the context is a 400 naming both numbers, not a silently shorter answer', async () => {
  // The server's context is 512 tokens; BOS + "Once upon a time" is 5.
  const r = await postJson(`${s.url}/v1/completions`, { prompt: 'Once upon a time', max_tokens: 600 });
  assertError(r, 400, 'max_tokens');
  assert.equal(r.json.error.code, 'context_length_exceeded');
  assert.match(r.json.error.message, /512 tokens.*605 \(5 in the prompt, max_tokens 600/);
  const chat = await postJson(`${s.url}/v1/chat/completions`, { messages: [{ role: 'user', content: 'Hi' }], max_completion_tokens: 512 });
  assertError(chat, 400, 'max_completion_tokens');
  const fits = await postJson(`${s.url}/v1/completions`, { prompt: 'Once upon a time', max_tokens: 507, stop: [' was'] });
  assert.equal(fits.status, 200, fits.text);
});

test('a body over the limit is a 413; an unknown route or model a 404', async () => {
  const huge = await postJson(`${s.url}/v1/completions`, { prompt: 'x'.repeat(200 * 1024) });
  assertError(huge, 413, null);
  assertError(await postJson(`${s.url}/v1/nothing`, {}), 404, null);
  const r = await fetch(`${s.url}/v2/models`);
  assert.equal(r.status, 404);
  assertError(await postJson(`${s.url}/v1/completions`, { model: 'other', prompt: 'x' }), 404, 'model');
});

/** An engine stand-in whose requests produce nothing until released: a queue that stays full. */
class HeldEngine {
  readonly info = { modelPath: '', arch: 'llama', vocabSize: 512, maxContext: 64, maxSeqs: 1, maxBatchTokens: 64, kvManager: 'paged' as const, scheduler: 'sarathi' as const, backend: 'none', prefixCache: false, kvType: { k: 'f16' as const, v: 'f16' as const }, loadMs: 0 };
  private releases: (() => void)[] = [];
  generate(): AsyncIterator<EngineDelta> {
    let done = false;
    const held = new Promise<void>((r) => this.releases.push(r));
    return {
      next: async () => {
        if (done) return { done: true, value: undefined };
        await held;
        done = true;
        return { done: false, value: { text: 'ok', tokens: [1], finish_reason: 'length', usage: { prompt_tokens: 1, completion_tokens: 1, total_tokens: 2, prompt_tokens_details: { cached_tokens: 0 } } } };
      },
    };
  }
  async stats(): Promise<EngineStats> {
    throw new Error('not needed');
  }
  release(): void {
    for (const r of this.releases.splice(0)) r();
  }
}

test('a full queue is a 429 with Retry-After; the server takes requests again once it drains', async () => {
  const engine = new HeldEngine();
  const held = await startWith(engine, { maxInflight: 2 });
  try {
    const url = `${held.url}/v1/completions`;
    const pending = [postJson(url, { prompt: 'a' }), postJson(url, { prompt: 'b' })];
    // Both requests are admitted once the engine has been asked for them.
    while (held.server.admission.count < 2) await new Promise((r) => setTimeout(r, 5));
    const rejected = await postJson(url, { prompt: 'c' });
    assertError(rejected, 429, null);
    assert.equal(rejected.headers.get('retry-after'), '1');
    engine.release();
    for (const r of await Promise.all(pending)) assert.equal(r.status, 200);
    const again = postJson(url, { prompt: 'd' });
    while (held.server.admission.count < 1) await new Promise((r) => setTimeout(r, 5));
    engine.release();
    assert.equal((await again).status, 200);
  } finally {
    engine.release();
    await held.close();
  }
});
