// KV tiers behind the OpenAI API, with a real redis-server and a real directory: a prefix computed by one
// replica is served from Redis by another (cached_tokens > 0, the same greedy text); a restarted server
// finds its disk tier; killing Redis under load fails no request, and it is used again once it is back;
// bad tier options are configuration errors that name the option.
import assert from 'node:assert/strict';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, test } from 'node:test';
import { Engine } from '../../src/engine/engine.js';
import type { EngineOptions } from '../../src/engine/engine-types.js';
import { RedisServer, redisSkipReason } from '../helpers/redis-server.js';
import { bundledModel, STORIES_GREEDY } from '../paths.js';
import { MODEL, postJson, startServer, type TestServer } from './helpers.js';

const skip = redisSkipReason();
/** Several 4 KiB pages of f32 rows (32 tokens each) of the bundled model. */
const PROMPT = `Once upon a time${STORIES_GREEDY}`;
const OPTIONS: EngineOptions = { pageSize: 4096, kvType: 'f32' };
const servers: TestServer[] = [];
const redises: RedisServer[] = [];
const dirs: string[] = [];
after(async () => {
  await Promise.allSettled(servers.map((s) => s.close()));
  await Promise.allSettled(redises.map((r) => r.stop()));
  for (const d of dirs) rmSync(d, { recursive: true, force: true });
});

async function server(opts: EngineOptions): Promise<TestServer> {
  const s = await startServer({}, { ...OPTIONS, ...opts });
  servers.push(s);
  return s;
}

async function complete(s: TestServer, prompt = PROMPT): Promise<{ text: string; cached: number; prompt: number }> {
  const r = await postJson(`${s.url}/v1/completions`, { model: MODEL, prompt, max_tokens: 16, temperature: 0 });
  assert.equal(r.status, 200, r.text);
  return { text: r.json.choices[0].text, cached: r.json.usage.prompt_tokens_details.cached_tokens, prompt: r.json.usage.prompt_tokens };
}

/** The sum of a metric's samples in /metrics. */
async function metric(s: TestServer, name: string): Promise<number> {
  const text = await (await fetch(`${s.url}/metrics`)).text();
  return [...text.matchAll(new RegExp(`^${name}(?:\\{[^}]*\\})? (\\S+)$`, 'gm'))].reduce((n, m) => n + Number(m[1]), 0);
}

async function writesSettled(s: TestServer): Promise<void> {
  while ((await s.engine.stats()).tiers!.pendingBlocks > 0) await new Promise((r) => setTimeout(r, 5));
}

test('a prefix computed on replica A is served from Redis on replica B: cached_tokens > 0, the same greedy text', { skip }, async () => {
  const redis = await RedisServer.start();
  redises.push(redis);
  const a = await server({ kvStore: redis.address });
  const b = await server({ kvStore: redis.address });
  const plain = await server({ prefixCache: false });
  const computed = await complete(a);
  assert.equal(computed.cached, 0);
  await writesSettled(a);
  const loaded = await complete(b);
  assert.equal(loaded.text, computed.text);
  assert.equal(loaded.text, (await complete(plain)).text, 'the text of a server without any cache');
  const blockTokens = 32;
  assert.equal(loaded.cached, Math.floor((loaded.prompt - 1) / blockTokens) * blockTokens);
  assert.equal(await metric(b, 'vserve:kv_tier_hit_blocks_total'), loaded.cached / blockTokens);
  assert.equal(await metric(b, 'vserve:kv_tier_up'), 1);
});

test('a restarted server loads what it computed before from its disk tier', async () => {
  const dir = mkdtempSync(join(tmpdir(), 'vserve-disk-tier-'));
  dirs.push(dir);
  const first = await server({ kvDisk: dir });
  const computed = await complete(first);
  await writesSettled(first);
  await first.close();
  const again = await server({ kvDisk: dir });
  const loaded = await complete(again);
  assert.equal(loaded.text, computed.text);
  assert.ok(loaded.cached > 0, 'blocks came from the disk');
});

test('killing Redis under load fails no request; it is counted, and used again once back', { skip }, async () => {
  const redis = await RedisServer.start();
  redises.push(redis);
  const s = await server({ kvStore: redis.address, kvStoreTimeoutMs: 200, maxSeqs: 4 });
  // Distinct prompts, so that every request looks its blocks up in Redis and writes new ones.
  const prompts = Array.from({ length: 24 }, (_, i) => `${i} ${PROMPT.slice(i * 3)}`);
  const expected = await Promise.all(prompts.map(async (p) => (await complete(await server({ prefixCache: false }), p)).text));
  const results = Promise.all(prompts.map((p, i) => new Promise((r) => setTimeout(r, i * 15)).then(() => complete(s, p))));
  await new Promise((r) => setTimeout(r, 100));
  await redis.kill();
  const outcomes = await results;
  assert.deepEqual(outcomes.map((o) => o.text), expected, 'every request answered, with the text computed without tiers');
  assert.equal(await metric(s, 'vserve:kv_tier_up'), 0);
  assert.ok((await metric(s, 'vserve:kv_tier_failures_total')) > 0, 'the failed calls were counted');

  await redis.restart();
  const deadline = Date.now() + 10_000;
  while ((await metric(s, 'vserve:kv_tier_up')) === 0 && Date.now() < deadline) await new Promise((r) => setTimeout(r, 50));
  assert.equal(await metric(s, 'vserve:kv_tier_up'), 1, 'reconnected');
  const written = await metric(s, 'vserve:kv_tier_written_blocks_total');
  await complete(s, `fresh ${PROMPT}`);
  await writesSettled(s);
  assert.ok((await metric(s, 'vserve:kv_tier_written_blocks_total')) > written, 'writes reach Redis again');
});

test('tier options that cannot work are configuration errors naming the option', async () => {
  await assert.rejects(Engine.load(bundledModel, { backend: 'reference', kvStore: 'http://127.0.0.1:6379' }), (e: Error) => e.name === 'EngineConfigError' && /kvStore/.test(e.message));
  await assert.rejects(Engine.load(bundledModel, { backend: 'reference', kvStore: 'redis://127.0.0.1:6379', prefixCache: false }), (e: Error) => e.name === 'EngineConfigError' && /prefix cache/.test(e.message));
  await assert.rejects(Engine.load(bundledModel, { backend: 'reference', kvDisk: '/dev/null/blocks' }), (e: Error) => e.name === 'EngineConfigError' && /kvDisk/.test(e.message));
  await assert.rejects(Engine.load(bundledModel, { backend: 'reference', kvStore: 'redis://127.0.0.1:6379', kvStoreTimeoutMs: 0 }), (e: Error) => e.name === 'EngineConfigError' && /kvStoreTimeoutMs/.test(e.message));
});
