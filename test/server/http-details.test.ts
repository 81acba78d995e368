// HTTP details around the API: 405 with Allow for a known path and the wrong method, x-request-id on
// every response, CORS only when configured (preflight answered before the API key), and error
// messages that state the body limit and say "not valid JSON" once.
import assert from 'node:assert/strict';
import { after, before, test } from 'node:test';
import { postJson, startServer, type TestServer } from './helpers.js';

let s: TestServer;
let cors: TestServer;
before(async () => {
  s = await startServer({ bodyLimit: 64 * 1024 });
  cors = await startServer({ corsOrigin: 'https://app.example', apiKey: 'k' });
});
after(async () => {
  await s.close();
  await cors.close();
});

test('a wrong method on a known path is a 405 naming the allowed ones; an unknown path stays a 404', async () => {
  const r = await fetch(`${s.url}/v1/chat/completions`);
  assert.equal(r.status, 405);
  assert.equal(r.headers.get('allow'), 'POST');
  const body = (await r.json()) as { error: { code: string; message: string } };
  assert.equal(body.error.code, 'method_not_allowed');
  const models = await fetch(`${s.url}/v1/models/stories260K`, { method: 'DELETE' });
  assert.equal(models.status, 405);
  assert.match(models.headers.get('allow')!, /GET/);
  assert.equal((await fetch(`${s.url}/v1/nothing`)).status, 404);
});

test('x-request-id: a sane one sent is echoed, otherwise one is made; errors and streams carry it', async () => {
  const echoed = await postJson(`${s.url}/v1/completions`, { prompt: 'Once', max_tokens: 1 }, { 'x-request-id': 'trace-42.a' });
  assert.equal(echoed.headers.get('x-request-id'), 'trace-42.a');
  const insane = await postJson(`${s.url}/v1/completions`, { prompt: 'Once', max_tokens: 1 }, { 'x-request-id': 'a b\tc' });
  assert.match(insane.headers.get('x-request-id')!, /^[0-9a-f-]{36}$/);
  const error = await postJson(`${s.url}/v1/completions`, { prompt: 'x', temperature: 9 });
  assert.equal(error.status, 400);
  assert.ok(error.headers.get('x-request-id'));
  const stream = await postJson(`${s.url}/v1/completions`, { prompt: 'Once', max_tokens: 2, stream: true });
  assert.ok(stream.headers.get('x-request-id'));
  assert.ok((await fetch(`${s.url}/nope`)).headers.get('x-request-id'));
});

test('the 413 states the limit; invalid JSON is said once', async () => {
  const huge = await postJson(`${s.url}/v1/completions`, { prompt: 'x'.repeat(100 * 1024) });
  assert.equal(huge.status, 413);
  assert.match(huge.json.error.message, /65536 bytes \(64 KiB\)/);
  for (const body of ['{"prompt": ', 'not json', '{"prompt": "x",}']) {
    const bad = await postJson(`${s.url}/v1/completions`, body);
    assert.equal(bad.status, 400);
    assert.equal(bad.json.error.message.match(/JSON/g)?.length, 1, bad.json.error.message);
  }
});

test('no CORS headers unless configured', async () => {
  const r = await fetch(`${s.url}/v1/models`, { headers: { origin: 'https://app.example' } });
  assert.equal(r.headers.get('access-control-allow-origin'), null);
});

test('CORS: the configured origin is allowed, on streams and errors too; a preflight needs no API key', async () => {
  const pre = await fetch(`${cors.url}/v1/chat/completions`, {
    method: 'OPTIONS', headers: { origin: 'https://app.example', 'access-control-request-method': 'POST', 'access-control-request-headers': 'authorization, content-type' },
  });
  assert.equal(pre.status, 204);
  assert.equal(pre.headers.get('access-control-allow-origin'), 'https://app.example');
  assert.match(pre.headers.get('access-control-allow-methods')!, /POST/);
  assert.match(pre.headers.get('access-control-allow-headers')!, /authorization/);
  const unauthorized = await fetch(`${cors.url}/v1/models`, { headers: { origin: 'https://app.example' } });
  assert.equal(unauthorized.status, 401);
  assert.equal(unauthorized.headers.get('access-control-allow-origin'), 'https://app.example');
  const stream = await postJson(`${cors.url}/v1/completions`, { prompt: 'Once', max_tokens: 2, stream: true }, { origin: 'https://app.example', authorization: 'Bearer k' });
  assert.equal(stream.status, 200);
  assert.equal(stream.headers.get('access-control-allow-origin'), 'https://app.example');
  const other = await fetch(`${cors.url}/v1/models`, { headers: { origin: 'https://evil.example', authorization: 'Bearer k' } });
  assert.equal(other.headers.get('access-control-allow-origin'), null);
});
