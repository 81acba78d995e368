// The cluster benchmark's tier helpers: redis-benchmark's CSV (as redis-benchmark 7 prints it) parses to
// its rates and an untimeable run is refused; tierThroughput stores and reads every value it counts, and
// counts the ones a tier dropped as missing; fillTier writes every value under a key of its own. No timing
// is asserted.
import assert from 'node:assert/strict';
import { mkdtempSync, readdirSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, test } from 'node:test';
import { fillTier, parseRedisBenchmarkCsv, redisBenchmarkThroughput, tierThroughput } from '../../bench/tier-throughput.js';
import { DiskTier } from '../../src/kv/tiers/disk-tier.js';
import { freePort } from '../helpers/redis-server.js';

const root = mkdtempSync(join(tmpdir(), 'vserve-tier-bench-'));
after(() => rmSync(root, { recursive: true, force: true }));

test("redis-benchmark's CSV: rates by test, with or without the header row", () => {
  const v7 = [
    '"test","rps","avg_latency_ms","min_latency_ms","p50_latency_ms","p95_latency_ms","p99_latency_ms","max_latency_ms"',
    '"SET","20000.00","0.006","0.000","0.007","0.015","0.023","0.023"',
    '"GET","18181.82","0.005","0.000","0.007","0.015","0.015","0.015"',
    '',
  ].join('\n');
  assert.deepEqual([...parseRedisBenchmarkCsv(v7)], [['SET', 20000], ['GET', 18181.82]]);
  assert.deepEqual([...parseRedisBenchmarkCsv('"SET","1234.5"\r\n"GET","99"\r\n')], [['SET', 1234.5], ['GET', 99]]);
  // What redis-benchmark prints when the requests finish within its clock's resolution.
  assert.throws(() => parseRedisBenchmarkCsv('"GET","inf","0.005","0.000","0.007","0.015","0.015","0.015"'), /GET a rate of "inf".*run more requests/);
});

test('redisBenchmarkThroughput names an unreachable server instead of waiting', async () => {
  const port = await freePort();
  await assert.rejects(redisBenchmarkThroughput(port, 100, 10), new RegExp(`cannot reach Redis at 127\\.0\\.0\\.1:${port}`));
});

test('tierThroughput writes and reads back every value, counting the dropped ones as missing', async () => {
  const roomy = await DiskTier.open({ directory: join(root, 'roomy'), capBytes: 1 << 20 });
  const r = await tierThroughput(roomy, 1000, 6, 4);
  assert.deepEqual([r.valueBytes, r.count, r.keysPerGet, r.missing], [1000, 6, 4, 0]);
  assert.ok(Number.isFinite(r.putGBps) && r.putGBps > 0 && Number.isFinite(r.getGBps) && r.getGBps > 0);
  const s = roomy.stats();
  assert.deepEqual([s.puts, s.putBytes, s.gets, s.getBytes], [6, 6000, 6, 6000]);
  // A second run uses new keys: every put is written again.
  await tierThroughput(roomy, 1000, 2);
  assert.equal(roomy.stats().puts, 8);
  await roomy.close();

  const small = await DiskTier.open({ directory: join(root, 'small'), capBytes: 3000 });
  const dropped = await tierThroughput(small, 1000, 6, 2);
  assert.equal(dropped.missing, 3, 'the cap keeps the last three values');
  await small.close();
  await assert.rejects(tierThroughput(small, 0, 1), /valueBytes/);
});

test('fillTier puts every value under a new key, in batches of the given size', async () => {
  const tier = await DiskTier.open({ directory: join(root, 'fill'), capBytes: 1 << 20 });
  await fillTier(tier, 500, 7, 3);
  await fillTier(tier, 500, 2);
  const s = tier.stats();
  assert.deepEqual([s.puts, s.putBytes], [9, 4500]);
  const files = readdirSync(join(root, 'fill'), { recursive: true, withFileTypes: true }).filter((e) => e.isFile());
  assert.equal(files.length, 9, 'no put overwrote another');
  await tier.close();
});
