// A client that leaves mid-stream aborts its request and frees its KV (seen in the engine's stats);
// SIGTERM makes `vserve serve` stop accepting, finish the streams in flight, and exit 0.
import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import { join } from 'node:path';
import { createInterface } from 'node:readline';
import { test } from 'node:test';
import { bundledModel, repoRoot } from '../paths.js';
import { eventually, MODEL, startServer } from './helpers.js';

test('a client that disconnects mid-stream aborts its request and its KV is freed', async () => {
  const s = await startServer({}, { kvManager: 'paged' });
  try {
    const controller = new AbortController();
    const res = await fetch(`${s.url}/v1/completions`, {
      method: 'POST',
      headers: { 'content-type': 'application/json' },
      // Greedy, no stop: the request runs to the end of the context unless it is aborted.
      body: JSON.stringify({ model: MODEL, prompt: 'Once upon a time', max_tokens: 500, temperature: 0, stream: true }),
      signal: controller.signal,
    });
    const reader = res.body!.getReader();
    await reader.read();
    const during = await s.engine.stats();
    assert.equal(during.running + during.waiting, 1);
    assert.equal(during.kv.activeSlots, 1);
    controller.abort();
    await eventually(async () => {
      const st = await s.engine.stats();
      return st.running === 0 && st.waiting === 0 && st.kv.activeSlots === 0;
    }, 'the aborted request to leave the engine');
    const st = await s.engine.stats();
    // The paged manager returns a finished slot's blocks at once: to the pool, or to the prefix cache,
    // which gives them back as soon as the pool needs them.
    assert.equal(st.kv.runningPages, 0);
    assert.equal(st.kv.freePages + st.kv.cachedPages, st.kv.totalPages);
    await eventually(async () => (await (await fetch(`${s.url}/metrics`)).text()).includes('reason="client_disconnected"'), 'the disconnect to be counted');
    const metrics = await (await fetch(`${s.url}/metrics`)).text();
    assert.doesNotMatch(metrics, /request_success_total\{finished_reason="length"/);
  } finally {
    await s.close();
  }
});

test('SIGTERM: no new connections, the stream in flight finishes with [DONE], exit code 0', async () => {
  const child = spawn(process.execPath, [join(repoRoot, 'dist/src/cli/main.js'), 'serve', '-m', bundledModel, '--port', '0', '--max-seqs', '2'], {
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  let stderr = '';
  child.stderr.on('data', (d) => (stderr += d));
  const exited = new Promise<number | null>((resolve) => child.on('exit', (code) => resolve(code)));
  try {
    const lines = createInterface({ input: child.stdout });
    let url: string | undefined;
    for await (const line of lines) {
      url = /OpenAI API:\s+(http:\/\/\S+)\/v1/.exec(line)?.[1];
      if (url) break;
    }
    assert.ok(url, `serve printed its URL (stderr: ${stderr})`);
    const res = await fetch(`${url}/v1/chat/completions`, {
      method: 'POST',
      headers: { 'content-type': 'application/json' },
      body: JSON.stringify({ messages: [{ role: 'user', content: 'Once upon a time' }], max_tokens: 400, temperature: 0, stream: true }),
    });
    const reader = res.body!.pipeThrough(new TextDecoderStream()).getReader();
    let body = (await reader.read()).value ?? '';
    child.kill('SIGTERM');
    for (let r = await reader.read(); !r.done; r = await reader.read()) body += r.value;
    assert.ok(body.trimEnd().endsWith('data: [DONE]'), body.slice(-200));
    assert.match(body, /"finish_reason":"(length|stop)"/);
    assert.equal(await exited, 0, stderr);
    await assert.rejects(fetch(`${url}/health`), 'the port is closed after the drain');
  } finally {
    if (child.exitCode === null) child.kill('SIGKILL');
  }
});
