// Clients that stall, flood, hang up mid-upload or send what is not JSON, and the access rules for the
// KV feed and /metrics. Each gets OpenAI's error JSON with the right status and is counted under the
// right reason.
import assert from 'node:assert/strict';
import { after, before, test } from 'node:test';
import { MODEL, eventually, postJson, startServer, type TestServer } from './helpers.js';
import { rawClient, STALLED_UPLOAD } from './raw-client.js';

let s: TestServer;
before(async () => {
  s = await startServer({ bodyTimeoutMs: 300, maxConnections: 4 });
});
after(() => s.close());

const failures = async (reason: string) => {
  const m = new RegExp(`request_failure_total\\{reason="${reason}",model_name="${MODEL}"\\} (\\d+)`).exec(await (await fetch(`${s.url}/metrics`)).text());
  return Number(m?.[1] ?? 0);
};

test('a body that stops arriving is a 408 in the OpenAI shape, and the connection is closed', async () => {
  const before = await failures('timeout');
  const c = await rawClient(s.url);
  c.socket.write(STALLED_UPLOAD);
  await c.closed;
  const [head, body] = c.received().split('\r\n\r\n');
  assert.match(head!, /^HTTP\/1.1 408/);
  assert.match(head!, /connection: close/i);
  const json = JSON.parse(body!);
  assert.deepEqual(Object.keys(json.error).sort(), ['code', 'message', 'param', 'type']);
  assert.equal(json.error.code, 'request_timeout');
  assert.equal(await failures('timeout'), before + 1);
});

test('connections over --max-connections are closed on arrival; the server serves again once some close', async () => {
  const held = [];
  // Fill every place with silent sockets: fetch's own keep-alive connection may hold one already.
  for (let i = 0; i < 4; i++) held.push(await rawClient(s.url));
  await eventually(async () => {
    const extra = await rawClient(s.url);
    await extra.closed;
    return extra.received() === '';
  }, 'a connection over the limit to be closed');
  for (const h of held) h.socket.destroy();
  await eventually(async () => (await fetch(`${s.url}/health`).then((r) => r.status, () => 0)) === 200, 'a place to free up');
});

test('a client that hangs up mid-upload is counted as client_disconnected, not invalid_request', async () => {
  const invalidBefore = await failures('invalid_request');
  const goneBefore = await failures('client_disconnected');
  const c = await rawClient(s.url);
  c.socket.write(STALLED_UPLOAD);
  // Hang up once the server holds the request (its headers are in).
  await eventually(async () => s.server.connections.busy > 0, 'the request to be read');
  c.socket.destroy();
  await eventually(async () => (await failures('client_disconnected')) === goneBefore + 1, 'the disconnect to be counted');
  assert.equal(await failures('invalid_request'), invalidBefore);
});

test('content types: JSON for application/json (any charset) and for none; 415 for anything else', async () => {
  const body = JSON.stringify({ model: MODEL, prompt: 'Once', max_tokens: 1, temperature: 0 });
  const post = (headers: Record<string, string>, b: string | Blob = body) => fetch(`${s.url}/v1/completions`, { method: 'POST', headers, body: b });
  assert.equal((await post({ 'content-type': 'application/json' })).status, 200);
  assert.equal((await post({ 'content-type': 'Application/JSON; charset=utf-8' })).status, 200);
  // A Blob with no type goes without a content type.
  const untyped = await post({}, new Blob([body]));
  assert.equal(untyped.status, 200, await untyped.text());
  for (const type of ['text/plain', 'image/png', 'application/x-www-form-urlencoded', 'application/jsonx']) {
    const r = await post({ 'content-type': type });
    assert.equal(r.status, 415, type);
    const json = (await r.json()) as any;
    assert.equal(json.error.code, 'unsupported_media_type');
    assert.match(json.error.message, /application\/json/);
  }
});

test('a 3.9 MiB prompt is a 400 context_length_exceeded, refused by its size', async () => {
  const r = await postJson(`${s.url}/v1/completions`, { model: MODEL, prompt: 'Once upon a time '.repeat(230_000), max_tokens: 4 });
  assert.equal(r.status, 400, r.text.slice(0, 300));
  assert.equal(r.json.error.code, 'context_length_exceeded');
  assert.equal(r.json.error.param, 'prompt');
  assert.match(r.json.error.message, /at least \d+ tokens \(3910000 bytes/);
});

test('an invalid body is still a 400 naming the field', async () => {
  const r = await postJson(`${s.url}/v1/completions`, { prompt: 'x', max_tokens: -1 });
  assert.equal(r.status, 400);
  assert.equal(r.json.error.param, 'max_tokens');
});

test('--api-key guards the KV feed (header or ?api_key=); --metrics-key guards /metrics, which is open without it', async () => {
  const guarded = await startServer({ apiKey: 'k1', metricsKey: 'm1' });
  const open = await startServer({ apiKey: 'k1' });
  try {
    const g = guarded.url;
    assert.equal((await fetch(`${g}/api/kv`)).status, 401);
    assert.equal((await fetch(`${g}/api/kv`, { headers: { authorization: 'Bearer wrong' } })).status, 401);
    assert.equal((await fetch(`${g}/api/kv`, { headers: { authorization: 'Bearer k1' } })).status, 200);
    assert.equal((await fetch(`${g}/api/kv?api_key=k1`)).status, 200);
    assert.equal((await fetch(`${g}/api/kv/stream`)).status, 401);
    assert.equal((await fetch(`${g}/api/kv/stream?api_key=k2`)).status, 401);
    const feed = new AbortController();
    const stream = await fetch(`${g}/api/kv/stream?api_key=k1`, { signal: feed.signal });
    assert.equal(stream.status, 200);
    assert.match(stream.headers.get('content-type')!, /text\/event-stream/);
    feed.abort();
    // The key is not taken from the query on /v1/*, where it would land in access logs for nothing.
    assert.equal((await fetch(`${g}/v1/models?api_key=k1`)).status, 401);
    assert.equal((await fetch(`${g}/metrics`)).status, 401);
    assert.equal((await fetch(`${g}/metrics`, { headers: { authorization: 'Bearer k1' } })).status, 401);
    assert.equal((await fetch(`${g}/metrics`, { headers: { authorization: 'Bearer m1' } })).status, 200);
    assert.equal((await fetch(`${g}/health`)).status, 200);
    assert.equal((await fetch(`${g}/api/info`)).status, 200);
    assert.equal((await fetch(`${g}/`)).status, 200);
    assert.equal((await fetch(`${open.url}/metrics`)).status, 200);
  } finally {
    await guarded.close();
    await open.close();
  }
});
