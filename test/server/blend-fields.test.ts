// The request fields that mark documents for KV reuse: `blend` on both endpoints and `document` on chat
// content parts. Bad values are 400s naming the field; good ones reach the engine in its terms; and
// through the real engine, sent with the openai npm client, the worker gets the documents' token ranges.
import assert from 'node:assert/strict';
import { after, before, test } from 'node:test';
import OpenAI from 'openai';
import type { GenerateCallOptions } from '../../src/engine/engine.js';
import type { ToWorker } from '../../src/engine/engine-messages.js';
import type { EngineDelta, EngineInput, EngineStats, RequestParams } from '../../src/engine/engine-types.js';
import type { ServingEngine } from '../../src/server/engine-like.js';
import { MODEL, postJson, startServer, startWith, tokenizer, type TestServer } from './helpers.js';

/** A stand-in that records what the server asks of the engine and answers one token. */
class RecordingEngine implements ServingEngine {
  readonly info = {
    modelPath: '', arch: 'llama', vocabSize: 512, maxContext: 64, maxSeqs: 4, maxBatchTokens: 64, kvManager: 'paged' as const, scheduler: 'sarathi' as const, backend: 'none', prefixCache: false, kvType: { k: 'f16' as const, v: 'f16' as const }, loadMs: 0,
  };
  readonly calls: { input: EngineInput; params: RequestParams }[] = [];

  generate(input: EngineInput, params: RequestParams, _opts: GenerateCallOptions): AsyncIterator<EngineDelta> {
    this.calls.push({ input, params });
    const usage = { prompt_tokens: 1, completion_tokens: 1, total_tokens: 2, prompt_tokens_details: { cached_tokens: 0 } };
    const deltas: EngineDelta[] = [{ text: 'Once', tokens: [1], finish_reason: 'length', usage }];
    return { next: async () => (deltas.length ? { done: false, value: deltas.shift()! } : { done: true, value: undefined }) };
  }

  async stats(): Promise<EngineStats> {
    throw new Error('not needed');
  }
}

const recording = new RecordingEngine();
let stand: Awaited<ReturnType<typeof startWith>>;
let real: TestServer;
/** The worker's submit messages of the real engine. */
const submits: Extract<ToWorker, { type: 'submit' }>[] = [];
before(async () => {
  stand = await startWith(recording);
  real = await startServer();
  const worker = (real.engine as unknown as { worker: { postMessage(m: ToWorker): void } }).worker;
  const post = worker.postMessage.bind(worker);
  worker.postMessage = (m: ToWorker) => {
    if (m.type === 'submit') submits.push(m);
    post(m);
  };
});
after(async () => {
  await stand.close();
  await real.close();
});

const chat = (content: unknown, extra: Record<string, unknown> = {}) => ({ messages: [{ role: 'user', content }], max_tokens: 2, ...extra });

function assertFieldError(r: { status: number; json: any }, param: string, code: string, message: RegExp): void {
  assert.equal(r.status, 400, JSON.stringify(r.json));
  assert.equal(r.json.error.param, param);
  assert.equal(r.json.error.code, code);
  assert.match(r.json.error.message, message);
}

test('bad blend values and document marks are 400s that name the field', async () => {
  for (const path of ['/v1/completions', '/v1/chat/completions']) {
    const body = (blend: unknown) => (path === '/v1/completions' ? { prompt: 'Once', max_tokens: 2, blend } : chat('Hi', { blend }));
    for (const bad of ['yes', 1, [], 'true']) {
      assertFieldError(await postJson(`${stand.url}${path}`, body(bad)), 'blend', 'invalid_value', /Invalid value for 'blend': must be true, false or \{"recompute"/);
    }
    assertFieldError(await postJson(`${stand.url}${path}`, body({ recompute: 1.5 })), 'blend.recompute', 'invalid_value', /'blend.recompute'/);
    assertFieldError(await postJson(`${stand.url}${path}`, body({ recompute: -0.1 })), 'blend.recompute', 'invalid_value', /'blend.recompute'/);
    assertFieldError(await postJson(`${stand.url}${path}`, body({ recompute: 'most' })), 'blend.recompute', 'invalid_type', /must be a fraction in \[0, 1\]/);
    assertFieldError(await postJson(`${stand.url}${path}`, body({ recompute: 0.2, layer: 1 })), 'blend.layer', 'unknown_parameter', /Unrecognized request field 'blend.layer'/);
  }
  const parts = (mark: Record<string, unknown>) => chat([{ type: 'text', text: 'Read: ' }, { type: 'text', text: 'Lily had a ball.', ...mark }]);
  for (const bad of ['yes', 1, {}]) {
    assertFieldError(await postJson(`${stand.url}/v1/chat/completions`, parts({ document: bad })), 'messages[0].content[1].document', 'invalid_type', /must be true or false/);
  }
  assertFieldError(await postJson(`${stand.url}/v1/chat/completions`, parts({ documnet: true })), 'messages[0].content[1].documnet', 'unknown_parameter', /Unrecognized request field/);
  // A part of another type is still named as it was refused before.
  assertFieldError(await postJson(`${stand.url}/v1/chat/completions`, chat([{ type: 'image_url', image_url: { url: 'x' } }])), 'messages[0].content[0].type', 'invalid_value', /only text content parts/);
  assert.equal(recording.calls.length, 0, 'nothing reached the engine');
});

test('blend and document marks reach the engine in its terms; requests without them as before', async () => {
  const sent = async (path: string, body: Record<string, unknown>) => {
    const r = await postJson(`${stand.url}${path}`, body);
    assert.equal(r.status, 200, r.text);
    return recording.calls.at(-1)!;
  };
  for (const [blend, expected] of [[true, true], [false, false], [{ recompute: 0.3 }, { recompute: 0.3 }], [{ recompute: null }, {}], [{}, {}], [null, undefined]] as const) {
    assert.deepEqual((await sent('/v1/completions', { prompt: 'Once # # Lily # # Why?', max_tokens: 2, blend })).params.blend, expected);
    assert.deepEqual((await sent('/v1/chat/completions', chat('Hi', { blend }))).params.blend, expected);
  }
  assert.equal('blend' in (await sent('/v1/completions', { prompt: 'Once', max_tokens: 2 })).params, false);
  // Marked parts stay parts; unmarked ones are joined into text as before.
  const marked = await sent('/v1/chat/completions', chat([{ type: 'text', text: 'Read: ' }, { type: 'text', text: 'Lily had a ball.', document: true }, { type: 'text', text: ' Why?', document: false }]));
  assert.deepEqual(marked.input, [{ role: 'user', content: [{ type: 'text', text: 'Read: ' }, { type: 'text', text: 'Lily had a ball.', document: true }, { type: 'text', text: ' Why?' }] }]);
  const unmarked = await sent('/v1/chat/completions', chat([{ type: 'text', text: 'Read: ' }, { type: 'text', text: 'Lily had a ball.', document: null }]));
  assert.deepEqual(unmarked.input, [{ role: 'user', content: 'Read: Lily had a ball.' }]);
});

/** The texts of the document ranges the worker got with the last request. */
function lastDocuments(): string[] {
  const m = submits.at(-1)!;
  return (m.params.documents ?? []).map(([s, e]) => tokenizer.decode((m.input as number[]).slice(s, e)));
}

test('through the real engine with the openai client: the worker gets the documents\' ranges', async () => {
  const client = new OpenAI({ baseURL: `${real.url}/v1`, apiKey: 'none', maxRetries: 0 });
  const LILY = 'Lily had a red ball.';
  const TOM = 'Tom saw a big dog.';
  // Extension fields: the client sends body fields and part fields it does not know as they are.
  const completion = await client.completions.create({
    model: MODEL, prompt: `Stories. # # ${LILY} # # ${TOM} # # What did Lily have?`, max_tokens: 4, temperature: 0,
    // @ts-expect-error vserve's extension field
    blend: { recompute: 0.15 },
  });
  assert.equal(completion.choices[0]!.finish_reason, 'length');
  assert.deepEqual(lastDocuments(), [LILY, TOM]);
  assert.deepEqual(submits.at(-1)!.params.blend, { recompute: 0.15 });
  // Without blend the separator is text.
  await client.completions.create({ model: MODEL, prompt: `Stories. # # ${LILY} # # ${TOM} # # What did Lily have?`, max_tokens: 2 });
  assert.equal(submits.at(-1)!.params.documents, undefined);
  assert.match(tokenizer.decode(submits.at(-1)!.input as number[]), / # # /);

  const reply = await client.chat.completions.create({
    model: MODEL, max_completion_tokens: 4, temperature: 0,
    messages: [{ role: 'user', content: [{ type: 'text', text: 'Read: ' }, { type: 'text', text: LILY, document: true } as OpenAI.ChatCompletionContentPartText, { type: 'text', text: ' What did Lily have?' }] }],
  });
  assert.equal(reply.choices[0]!.finish_reason, 'length');
  assert.deepEqual(lastDocuments(), [LILY]);
  assert.equal(submits.at(-1)!.params.blend, true, 'document parts turn blending on');
  // The same usage as the tokens the worker got.
  assert.equal(reply.usage!.prompt_tokens, (submits.at(-1)!.input as number[]).length);
});

test('documents are reused across requests in any order: cached_tokens counts them, /metrics reports them', async () => {
  const client = new OpenAI({ baseURL: `${real.url}/v1`, apiKey: 'none', maxRetries: 0 });
  const counter = async (name: string) => {
    const metrics = await (await fetch(`${real.url}/metrics`)).text();
    return Number(new RegExp(`^vserve:${name}\\{[^}]*\\} (\\d+)`, 'm').exec(metrics)?.[1] ?? 0);
  };
  const docs = ['Once upon a time there was a big cat that liked to sleep in the sun all day.', 'A little boy named Tim found a shiny red ball in the park near his house.'];
  const ask = (order: string[]) => client.completions.create({
    model: MODEL, prompt: ['Two stories.', ...order, 'Which one had a ball?'].join(' # # '), max_tokens: 4, temperature: 0,
    // @ts-expect-error vserve's extension field
    blend: true,
  });
  const [jobs, reused] = [await counter('blend_chunk_jobs_total'), await counter('blend_documents_reused_total')];
  const first = await ask(docs);
  const second = await ask([docs[1]!, docs[0]!]);
  const documentTokens = (submits.at(-1)!.params.documents ?? []).reduce((n, [s, e]) => n + e - s, 0);
  assert.ok(documentTokens > 20);
  assert.ok(second.usage!.prompt_tokens_details!.cached_tokens! >= documentTokens, `cached ${second.usage!.prompt_tokens_details!.cached_tokens} of ${documentTokens} document tokens`);
  assert.equal(first.usage!.prompt_tokens, second.usage!.prompt_tokens);
  assert.equal(await counter('blend_chunk_jobs_total') - jobs, 2, 'each document computed once');
  assert.equal(await counter('blend_documents_reused_total') - reused, 4);
});
