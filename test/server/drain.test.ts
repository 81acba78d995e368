// Draining for shutdown with hostile or slow clients: a silent socket, half-sent headers and an idle
// keep-alive connection are closed at once; a stalled body and a stream that outlives the grace
// period are answered with an error, and the drain finishes. `vserve serve` exits on SIGTERM with all
// of them open. Nothing here is timed: each test waits for the drain to resolve.
import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import { join } from 'node:path';
import { createInterface } from 'node:readline';
import { test } from 'node:test';
import { bundledModel, repoRoot } from '../paths.js';
import { EndlessEngine } from './endless-engine.js';
import { startWith } from './helpers.js';
import { rawClient, STALLED_UPLOAD } from './raw-client.js';

const LONG = 10 * 60_000; // a grace period no test waits out

test('drain closes a silent socket, half-sent headers and an idle keep-alive connection at once', async () => {
  const s = await startWith(new EndlessEngine(), { drainTimeoutMs: LONG, bodyTimeoutMs: LONG });
  const silent = await rawClient(s.url);
  const partial = await rawClient(s.url);
  partial.socket.write('POST /v1/completions HTTP/1.1\r\nHost: x\r\nContent-Ty');
  const keepAlive = await rawClient(s.url);
  keepAlive.socket.write('GET /health HTTP/1.1\r\nHost: x\r\n\r\n');
  while (!keepAlive.received().includes('"ok"')) await new Promise((r) => setTimeout(r, 5));
  await s.server.drain();
  await Promise.all([silent.closed, partial.closed, keepAlive.closed]);
  assert.equal(silent.received(), '');
  assert.equal(partial.received(), '');
});

/** Starts a stalled upload, waits until the server holds it, drains, and returns what the client got. */
async function stalledThroughDrain(drainTimeoutMs: number, bodyTimeoutMs: number): Promise<string> {
  const s = await startWith(new EndlessEngine(), { drainTimeoutMs, bodyTimeoutMs });
  const stalled = await rawClient(s.url);
  stalled.socket.write(STALLED_UPLOAD);
  while (s.server.connections.busy === 0) await new Promise((r) => setTimeout(r, 5));
  await s.server.drain();
  await stalled.closed;
  return stalled.received();
}

test('drain: a stalled body is answered 408 when the body timeout comes first', async () => {
  const got = await stalledThroughDrain(LONG, 200);
  assert.match(got, /^HTTP\/1.1 408/);
  assert.match(got, /"code":"request_timeout"/);
});

test('drain: a stalled body is answered 503 when the grace period ends first', async () => {
  const got = await stalledThroughDrain(100, LONG);
  assert.match(got, /^HTTP\/1.1 503/);
  assert.match(got, /"type":"server_error"/);
});

test('drain: a stream that outlives the grace period ends with an SSE error event and [DONE]; a whole response gets a 503', async () => {
  const engine = new EndlessEngine();
  const s = await startWith(engine, { drainTimeoutMs: 100, bodyTimeoutMs: LONG });
  const streamed = await fetch(`${s.url}/v1/completions`, {
    method: 'POST', headers: { 'content-type': 'application/json' }, body: JSON.stringify({ prompt: 'Once', stream: true }),
  });
  const reader = streamed.body!.pipeThrough(new TextDecoderStream()).getReader();
  let body = (await reader.read()).value ?? '';
  const whole = fetch(`${s.url}/v1/completions`, { method: 'POST', headers: { 'content-type': 'application/json' }, body: JSON.stringify({ prompt: 'Once' }) });
  while (engine.started < 2) await new Promise((r) => setTimeout(r, 5));
  const drained = s.server.drain();
  for (let r = await reader.read(); !r.done; r = await reader.read()) body += r.value;
  const w = await whole;
  await drained;
  assert.match(body, /"code":"server_shutdown"/);
  assert.ok(body.trimEnd().endsWith('data: [DONE]'), body);
  assert.equal(w.status, 503);
  assert.equal(((await w.json()) as any).error.code, 'server_shutdown');
  assert.equal(engine.aborted, 2, 'both engine requests were aborted');
  const metrics = await s.server.metrics.render(undefined);
  assert.match(metrics, /request_failure_total\{reason="shutdown",model_name="stories260K"\} 2/);
});

test('SIGTERM with a silent socket, half-sent headers and a stalled body open: vserve serve exits 0', async () => {
  const child = spawn(process.execPath, [join(repoRoot, 'dist/src/cli/main.js'), 'serve', '-m', bundledModel, '--port', '0', '--max-seqs', '2', '--drain-timeout', '0.5'], {
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  let stderr = '';
  child.stderr.on('data', (d) => (stderr += d));
  const exited = new Promise<number | null>((resolve) => child.on('exit', (code) => resolve(code)));
  try {
    let url: string | undefined;
    for await (const line of createInterface({ input: child.stdout })) {
      url = /OpenAI API:\s+(http:\/\/\S+)\/v1/.exec(line)?.[1];
      if (url) break;
    }
    assert.ok(url, `serve printed its URL (stderr: ${stderr})`);
    const silent = await rawClient(url);
    const partial = await rawClient(url);
    partial.socket.write('GET /health HTTP/1.1\r\nHo');
    const stalled = await rawClient(url);
    stalled.socket.write(STALLED_UPLOAD);
    await fetch(`${url}/health`);
    child.kill('SIGTERM');
    assert.equal(await exited, 0, stderr);
    await Promise.all([silent.closed, partial.closed, stalled.closed]);
    // Answered 503 if its headers were in when the drain began, else closed as a half-sent request.
    assert.match(stalled.received(), /^(HTTP\/1.1 503 [^]*"service_unavailable"[^]*)?$/);
  } finally {
    if (child.exitCode === null) child.kill('SIGKILL');
  }
});
