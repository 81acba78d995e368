// The load generator against a live server: every request succeeds, token counts add up, and
// `vserve bench serve` writes its JSON and Markdown reports. (No assertions on timings.)
import assert from 'node:assert/strict';
import { execFile } from 'node:child_process';
import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { promisify } from 'node:util';
import { test } from 'node:test';
import { buildReport, percentiles } from '../../src/loadgen/report.js';
import { runLoad } from '../../src/loadgen/run-load.js';
import { planWorkload } from '../../src/loadgen/workload.js';
import { repoRoot } from '../paths.js';
import { MODEL, startServer } from './helpers.js';

test('workloads: seeded, shared-prefix ratio honoured, Poisson arrivals increasing', () => {
  const o = { requests: 200, promptLens: [8, 32], outputLens: [4], sharedPrefixRatio: 0.5, prefixWords: 6, rate: 10, seed: 3 };
  const a = planWorkload(o);
  assert.deepEqual(a, planWorkload(o));
  const shared = a.filter((r) => r.shared).length;
  assert.ok(shared > 60 && shared < 140, String(shared));
  const prefix = a.find((r) => r.shared)!.prompt.split(' ').slice(0, 6).join(' ');
  assert.ok(a.filter((r) => r.shared).every((r) => r.prompt.startsWith(prefix)));
  assert.ok(a.every((r, i) => i === 0 || r.at! >= a[i - 1]!.at!));
  assert.deepEqual(percentiles([5, 1, 4, 2, 3]), { mean: 3, p50: 3, p90: 5, p99: 5, max: 5 });
});

test('bench serve: fixed concurrency and Poisson runs against a live server', async () => {
  const s = await startServer();
  const out = mkdtempSync(join(tmpdir(), 'vserve-bench-'));
  try {
    const plan = planWorkload({ requests: 12, promptLens: [4, 16], outputLens: [3, 8], sharedPrefixRatio: 0.5, prefixWords: 3, seed: 1 });
    const { results, durationS } = await runLoad({ url: s.url, model: MODEL }, plan, 4);
    const report = buildReport({ url: s.url, model: MODEL, mode: 'test' }, results, durationS);
    assert.equal(report.succeeded, 12, JSON.stringify(report.errors));
    assert.equal(report.completionTokens, results.reduce((n, r) => n + r.completionTokens, 0));
    assert.ok(results.every((r) => r.completionTokens <= plan[r.index]!.maxTokens && r.ttftMs !== undefined));

    const { stdout } = await promisify(execFile)(process.execPath, [
      join(repoRoot, 'dist/src/cli/main.js'), 'bench', 'serve', '--url', s.url, '--requests', '6', '--rate', '50', '--output-lens', '4', '--out', out,
    ]);
    assert.match(stdout, /\| time to first token \|/);
    const json = JSON.parse(readFileSync(join(out, 'report.json'), 'utf8'));
    assert.equal(json.succeeded, 6);
    assert.equal(json.model, MODEL);
    assert.match(readFileSync(join(out, 'report.md'), 'utf8'), /Poisson arrivals at 50 req\/s/);
  } finally {
    rmSync(out, { recursive: true, force: true });
    await s.close();
  }
});
