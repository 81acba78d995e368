// The public Engine: a worker thread behind an async-iterable API. Text in, the known greedy text out;
// 200 concurrent requests; aborts by signal and by leaving the loop; per-request errors that leave the
// engine serving; seeds, stop strings, logprobs, stats and close.
import assert from 'node:assert/strict';
import { after, before, test } from 'node:test';
import { Engine, type EngineDelta } from '../../src/index.js';
import { bundledModel, STORIES_GREEDY } from '../paths.js';
import { virtualUnavailable } from './engine-helpers.js';

// The default (virtual) KV manager needs the native addon; without it these tests run on the paged one.
const kvManager = virtualUnavailable() ? 'paged' : 'virtual';
let engine: Engine;
before(async () => {
  engine = await Engine.load(bundledModel, { backend: 'reference', kvManager, maxContext: 256, maxSeqs: 16, maxBatchTokens: 64 });
});
after(() => engine.close());

async function collect(stream: AsyncIterable<EngineDelta>) {
  const deltas: EngineDelta[] = [];
  for await (const d of stream) deltas.push(d);
  return { deltas, text: deltas.map((d) => d.text).join(''), tokens: deltas.flatMap((d) => d.tokens), last: deltas.at(-1)! };
}

async function assertPoolAtRest() {
  const s = await engine.stats();
  assert.deepEqual([s.running, s.waiting, s.requests.length], [0, 0, 0]);
  assert.deepEqual([s.kv.activeSlots, s.kv.storedTokens], [0, 0]);
  assert.equal(s.kv.freePages + s.kv.reclaimablePages, s.kv.totalPages);
}

test('text in: BOS + "Once upon a time" continues with the known greedy text', async () => {
  const r = await collect(engine.generate('Once upon a time', { temperature: 0, maxTokens: 40 }));
  assert.ok(STORIES_GREEDY.startsWith(r.text) && r.text.length > 80, r.text);
  assert.equal(r.last.finish_reason, 'length');
  assert.deepEqual(r.last.usage, { prompt_tokens: 5, completion_tokens: 40, total_tokens: 45, prompt_tokens_details: { cached_tokens: 0 } });
  assert.equal(r.last.timings?.completionTokens, 40);
});

test('200 concurrent requests all finish and the pool returns to its initial state', async () => {
  const prompts = Array.from({ length: 200 }, (_, i) => `Once upon a time${STORIES_GREEDY.slice(0, i % 60)}`);
  const results = await Promise.all(prompts.map((p, i) => collect(engine.generate(p, { temperature: 0, maxTokens: 1 + (i % 7) }))));
  results.forEach((r, i) => {
    assert.ok(r.last.finish_reason === 'length' || r.last.finish_reason === 'stop');
    assert.ok(r.tokens.length <= 1 + (i % 7));
  });
  // Same prompt, same tokens, however it was batched.
  assert.deepEqual(results[60]!.tokens.slice(0, results[0]!.tokens.length), results[0]!.tokens);
  await assertPoolAtRest();
});

test('a bad request fails alone with a clear error; the engine keeps serving', async () => {
  await assert.rejects(collect(engine.generate('Hi', { temperature: -1 })), { name: 'SamplingError', message: /temperature/ });
  await assert.rejects(collect(engine.generate('Hi '.repeat(300), {})), { name: 'ContextLengthError', message: /the context holds 256/ });
  await assert.rejects(collect(engine.generate('Hi', { stop: [''] })), /stop strings must not be empty/);
  const ok = await collect(engine.generate('Once upon a time', { temperature: 0, maxTokens: 3 }));
  assert.equal(ok.tokens.length, 3);
});

test('an AbortSignal ends a request mid-decode with finish_reason abort and frees its KV', async () => {
  const controller = new AbortController();
  const deltas: EngineDelta[] = [];
  for await (const d of engine.generate('Once upon a time', { temperature: 0, maxTokens: 200 }, { signal: controller.signal })) {
    deltas.push(d);
    if (deltas.length === 2) controller.abort();
  }
  assert.equal(deltas.at(-1)!.finish_reason, 'abort');
  assert.ok(deltas.length < 50);
  const pre = new AbortController();
  pre.abort();
  assert.equal((await collect(engine.generate('Hi', {}, { signal: pre.signal }))).last.finish_reason, 'abort');
  await assertPoolAtRest();
});

test('leaving the loop early aborts the request', async () => {
  for await (const d of engine.generate('Once upon a time', { temperature: 0, maxTokens: 200 })) {
    assert.ok(d.tokens.length > 0);
    break;
  }
  await new Promise((r) => setTimeout(r, 50));
  await assertPoolAtRest();
});

test('seeded sampling repeats exactly, batched with other requests', async () => {
  const params = { temperature: 0.9, topP: 0.95, seed: 1234, maxTokens: 30 };
  const [a, , b] = await Promise.all([
    collect(engine.generate('Once upon a time', params)),
    collect(engine.generate('The dog', { temperature: 0.9, maxTokens: 25 })),
    collect(engine.generate('Once upon a time', params)),
  ]);
  assert.deepEqual(a.tokens, b.tokens);
  assert.equal(a.text, b.text);
});

test('stop strings end the text before them, even across tokens', async () => {
  const r = await collect(engine.generate('Once upon a time', { temperature: 0, maxTokens: 60, stop: ['named Lily'] }));
  assert.equal(r.text, ', there was a little girl ');
  assert.equal(r.last.finish_reason, 'stop');
});

test('logprobs: the chosen token and the top-n alternatives with each token', async () => {
  const r = await collect(engine.generate('Once upon a time', { temperature: 0, maxTokens: 5, logprobs: true, topLogprobs: 3 }));
  const lps = r.deltas.flatMap((d) => d.logprobs ?? []);
  assert.equal(lps.length, 5);
  for (const lp of lps) {
    assert.equal(lp.top.length, 3);
    assert.equal(lp.top[0]!.token, lp.token, 'greedy picks the most likely token');
    assert.ok(lp.logprob <= 0);
  }
});

test('stats report the scheduler, the step counters and the KV pool', async () => {
  const s = await engine.stats();
  assert.ok(s.step.steps > 0 && s.step.totalTokens > 0);
  assert.equal(s.kv.kind, kvManager);
  assert.ok(s.kv.pageBytes > 0 && s.kv.totalPages > 0);
  assert.equal(engine.info.scheduler, 'sarathi');
  assert.equal(engine.info.maxContext, 256);
});

test('invalid options fail Engine.load with a message naming the option', async () => {
  await assert.rejects(Engine.load(bundledModel, { backend: 'reference', scheduler: 'fifo' as 'vllm' }), /scheduler must be one of sarathi, vllm, static/);
  await assert.rejects(Engine.load(bundledModel, { backend: 'reference', maxContext: 64, kvMemory: 1000 }), /kvMemory/);
});

test('after close, requests fail with EngineClosedError', async () => {
  const e = await Engine.load(bundledModel, { backend: 'reference', maxContext: 64, kvManager: 'paged' });
  const running = collect(e.generate('Once upon a time', { temperature: 0, maxTokens: 50 }));
  await e.close();
  const r = await running.catch((err: Error) => err);
  assert.ok(r instanceof Error ? r.name === 'EngineClosedError' : r.last.finish_reason !== undefined);
  await assert.rejects(collect(e.generate('Hi')), { name: 'EngineClosedError' });
});

test('chat messages go through the model chat template (the fallback format for the bundled model)', async () => {
  const params = { temperature: 0, maxTokens: 12 };
  const chat = await collect(engine.generate([{ role: 'user', content: 'Tell me a story.' }], params));
  const text = await collect(engine.generate('User: Tell me a story.\n\nAssistant:', params));
  assert.deepEqual(chat.tokens, text.tokens);
  assert.equal(chat.last.usage?.prompt_tokens, text.last.usage?.prompt_tokens);
});

test('unknown Engine.load options and generate parameters are errors naming the key and its likely meaning', async () => {
  await assert.rejects(Engine.load(bundledModel, { kvManagr: 'paged' } as never), (e: Error) => {
    assert.equal(e.name, 'EngineConfigError');
    assert.match(e.message, /unknown Engine\.load option "kvManagr" \(did you mean "kvManager"\?\)/);
    return true;
  });
  await assert.rejects(collect(engine.generate('Once', { max_tokens: 5 } as never)), (e: Error) => {
    assert.equal(e.name, 'RequestParamsError');
    assert.match(e.message, /"max_tokens" \(did you mean "maxTokens"\?\)/);
    return true;
  });
  await assert.rejects(collect(engine.generate('Once', { colour: 'red' } as never)), /unknown generate parameter "colour"; known:/);
});

test('a signal among the generate parameters aborts the request too', async () => {
  const controller = new AbortController();
  const deltas: EngineDelta[] = [];
  for await (const d of engine.generate('Once upon a time', { temperature: 0, maxTokens: 200, signal: controller.signal })) {
    deltas.push(d);
    if (deltas.length === 3) controller.abort();
  }
  assert.equal(deltas.at(-1)!.finish_reason, 'abort');
  assert.ok(deltas.length < 50);
  await assertPoolAtRest();
});
