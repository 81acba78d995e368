// `vserve bench serve` when requests fail: errors are counted by cause, and a run where every request
// failed exits non-zero (a script must not take it for a measurement).
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { createServer } from 'node:net';
import { join } from 'node:path';
import { test } from 'node:test';
import type { RequestResult } from '../../src/loadgen/client.js';
import { buildReport, markdownReport } from '../../src/loadgen/report.js';
import { repoRoot } from '../paths.js';

/** A port nothing listens on: one the OS just gave out and took back. */
async function closedPort(): Promise<number> {
  const server = createServer();
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const { port } = server.address() as { port: number };
  await new Promise((resolve) => server.close(resolve));
  return port;
}

test('bench serve report: failed requests are grouped by cause', () => {
  const failed = (status: number, error: string): RequestResult => ({ index: 0, ok: false, status, error, tbtMs: [], e2eMs: 1, promptTokens: 0, completionTokens: 0, cachedTokens: 0 });
  const results = [failed(401, 'invalid API key'), failed(401, 'invalid API key'), failed(0, 'fetch failed: ECONNRESET'), { ...failed(200, ''), ok: true, error: undefined }];
  const report = buildReport({ url: 'u', model: 'm', mode: 'test' }, results, 1);
  assert.deepEqual(report.errors, { 'HTTP 401: invalid API key': 2, 'no response: fetch failed: ECONNRESET': 1 });
  assert.match(markdownReport(report), /Failed requests by cause:\n\n- 2 x HTTP 401: invalid API key\n- 1 x no response: fetch failed: ECONNRESET\n/);
});

test('bench serve: every request failing is an error exit, with the cause', async () => {
  const url = `http://127.0.0.1:${await closedPort()}`;
  const r = spawnSync(process.execPath, [join(repoRoot, 'bin', 'vserve'), 'bench', 'serve', '--url', url, '--model', 'm', '--requests', '3'], { encoding: 'utf8', timeout: 60_000 });
  assert.equal(r.status, 1, r.stderr);
  assert.match(r.stdout, /0\/3 requests succeeded/);
  assert.match(r.stdout, /- 3 x no response: fetch failed: ECONNREFUSED/);
  assert.match(r.stderr, /all 3 requests failed \(no response: fetch failed: ECONNREFUSED\)/);
});
