// A model whose weights hold NaN is the server's fault, not the client's: a 500 naming the cause and
// the request id, counted as a server error, whole or streamed, greedy or sampled.
import assert from 'node:assert/strict';
import { rmSync } from 'node:fs';
import { dirname } from 'node:path';
import { after, before, test } from 'node:test';
import { Engine } from '../../src/engine/engine.js';
import { loadModel } from '../../src/model/load.js';
import { MODEL, kvManager, postJson, startWith } from './helpers.js';
import { writeNanModel } from './nan-model.js';

let path: string;
let engine: Engine;
let s: Awaited<ReturnType<typeof startWith>>;
before(async () => {
  path = writeNanModel();
  engine = await Engine.load(path, { backend: 'reference', kvManager, maxContext: 128, maxSeqs: 2 });
  s = await startWith(engine);
});
after(async () => {
  await s.close();
  await engine.close();
  rmSync(dirname(path), { recursive: true, force: true });
});

const failures = async (reason: string) => {
  const m = new RegExp(`request_failure_total\\{reason="${reason}",model_name="${MODEL}"\\} (\\d+)`).exec(await (await fetch(`${s.url}/metrics`)).text());
  return Number(m?.[1] ?? 0);
};

test('NaN weights: a 500 with the request id and the cause, counted as a server error, never as invalid_request', async () => {
  for (const temperature of [0, 0.8]) {
    const r = await postJson(`${s.url}/v1/completions`, { model: MODEL, prompt: 'Once upon a time', max_tokens: 4, temperature });
    assert.equal(r.status, 500, r.text);
    assert.equal(r.json.error.type, 'server_error');
    assert.equal(r.json.error.code, 'non_finite_logits');
    assert.equal(r.json.error.param, null);
    assert.match(r.json.error.message, /request cmpl-[0-9a-f]{32}: the model produced a non-finite logit \(NaN/);
  }
  assert.equal(await failures('server_error'), 2);
  assert.equal(await failures('invalid_request'), 0);
});

test('NaN weights, streamed: the error frame names the cause', async () => {
  const r = await postJson(`${s.url}/v1/chat/completions`, { model: MODEL, messages: [{ role: 'user', content: 'Hi' }], max_tokens: 4, stream: true });
  // The first delta is awaited before the headers, so the error is still a status.
  assert.equal(r.status, 500, r.text);
  assert.equal(r.json.error.code, 'non_finite_logits');
  assert.match(r.json.error.message, /request chatcmpl-[0-9a-f]{32}/);
});

test('loading a model with NaN in a norm vector warns, naming the tensor', async () => {
  const warnings: Error[] = [];
  const onWarning = (w: Error) => warnings.push(w);
  process.on('warning', onWarning);
  try {
    loadModel(path, { backend: 'reference' }).model.close();
    // 'warning' events are emitted on a later tick.
    await new Promise((r) => setImmediate(r));
  } finally {
    process.off('warning', onWarning);
  }
  assert.ok(warnings.some((w) => w.name === 'ModelWarning' && /"output_norm.weight" holds a non-finite value \(NaN/.test(w.message)), warnings.map(String).join('\n'));
});
