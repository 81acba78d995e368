// The server turns an engine error into a status by the kind and code it carries across the worker
// (DESIGN §8.7), never by its class name or message: a stray RangeError from deep inside is a 500,
// not "invalid prompt"; a request fault is a 400 naming its field.
import assert from 'node:assert/strict';
import { test } from 'node:test';
import type { EngineDelta, EngineStats } from '../../src/engine/engine-types.js';
import { RequestFaultError } from '../../src/engine/error-kind.js';
import { EngineClosedError } from '../../src/engine/engine.js';
import { postJson, startWith } from './helpers.js';

/** A stand-in engine whose every request fails with `error`. */
function failingEngine(error: () => Error) {
  return {
    info: { modelPath: '', arch: 'llama', vocabSize: 512, maxContext: 64, maxSeqs: 1, maxBatchTokens: 64, kvManager: 'paged' as const, scheduler: 'sarathi' as const, backend: 'none', prefixCache: false, kvType: { k: 'f16' as const, v: 'f16' as const }, loadMs: 0 },
    generate(): AsyncIterator<EngineDelta> {
      return { next: async () => { throw error(); } };
    },
    async stats(): Promise<EngineStats> {
      throw new Error('not needed');
    },
  };
}

async function statusFor(error: () => Error, path = '/v1/completions', body: object = { prompt: 'x' }) {
  const s = await startWith(failingEngine(error));
  try {
    return await postJson(`${s.url}${path}`, body);
  } finally {
    await s.close();
  }
}

test('a native RangeError, or any error without a kind, is a 500 with the request id, whatever its name or message', async () => {
  for (const make of [() => new RangeError('invalid prompt: offset out of bounds'), () => Object.assign(new Error('x'), { name: 'SamplingError' })]) {
    const r = await statusFor(make);
    assert.equal(r.status, 500, r.text);
    assert.equal(r.json.error.type, 'server_error');
    assert.equal(r.json.error.param, null);
    assert.doesNotMatch(r.json.error.message, /invalid prompt|offset/);
  }
});

test("a request fault is a 400 with its code and field; 'prompt' stands for messages on chat", async () => {
  const r = await statusFor(() => new RequestFaultError('top_p must be in (0, 1]', 'invalid_value', 'top_p'));
  assert.equal(r.status, 400);
  assert.deepEqual(r.json.error, { message: 'top_p must be in (0, 1]', type: 'invalid_request_error', param: 'top_p', code: 'invalid_value' });
  const chat = await statusFor(() => new RequestFaultError('too long', 'context_length_exceeded', 'prompt'), '/v1/chat/completions', { messages: [{ role: 'user', content: 'x' }] });
  assert.equal(chat.status, 400);
  assert.equal(chat.json.error.param, 'messages');
  assert.equal(chat.json.error.code, 'context_length_exceeded');
});

test('a stopped engine is a 503, by its code', async () => {
  const r = await statusFor(() => new EngineClosedError('the engine is closed'));
  assert.equal(r.status, 503);
  assert.equal(r.json.error.code, 'service_unavailable');
});
