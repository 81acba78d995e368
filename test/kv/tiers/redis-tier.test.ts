// The Redis tier against a real redis-server: values round-trip byte for byte under the key prefix; the
// run of hits stops at a gap; a killed server makes calls reject at once and is logged once; a restarted
// one is used again by the same tier; a stalled one is cut off at the command timeout without its late
// replies being taken for later calls' answers; Redis's own LRU eviction shows as absent keys, never as
// wrong values. A 3-node Redis Cluster takes the per-key path.
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { test, type TestContext } from 'node:test';
import { createClient, RESP_TYPES } from '@redis/client';
import { RedisTier, type RedisTierOptions } from '../../../src/kv/tiers/redis-tier.js';
import { createRedisTier } from '../../../src/kv/tiers/store-address.js';
import { freePort, RedisClusterServers, RedisServer, redisSkipReason, type RedisServerOptions } from '../../helpers/redis-server.js';

const skip = redisSkipReason();
const skipCluster = redisSkipReason(['redis-server', 'redis-cli']);

/**
 * Holds the thread for `ms`, as one forward pass on the engine's thread does. The engine runs its steps
 * from setImmediate, so the next turn of the event loop runs the timers that fell due before it reads the
 * sockets: a timer that takes that for silence fails here.
 */
function busyStep(ms: number): Promise<void> {
  return new Promise((done) => setImmediate(() => {
    const until = performance.now() + ms;
    while (performance.now() < until) {
      // Busy.
    }
    done();
  }));
}
const skipTls = redisSkipReason(['redis-server', 'openssl']);
const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

interface Setup {
  server: RedisServer;
  tier: RedisTier;
  lines: string[];
  /** A plain client of the same server, as the independent view of what is stored. */
  direct: DirectClient;
}

type DirectClient = Awaited<ReturnType<typeof directClient>>;

/** A client of its own (bulk replies as Buffers), not the tier's connection. */
async function directClient(port: number) {
  const client = createClient({ socket: { port, host: '127.0.0.1', reconnectStrategy: () => 50 } }).withTypeMapping({ [RESP_TYPES.BLOB_STRING]: Buffer });
  client.on('error', () => {});
  await client.connect();
  return client;
}

async function setup(t: TestContext, tierOptions: RedisTierOptions = {}, serverOptions: RedisServerOptions = {}): Promise<Setup> {
  const defer = cleanups(t);
  const server = await RedisServer.start(serverOptions);
  defer(() => server.stop());
  const lines: string[] = [];
  const tier = createRedisTier(server.address, { log: (l) => lines.push(l), ...tierOptions });
  defer(() => tier.close());
  const direct = await directClient(server.port);
  defer(() => direct.destroy());
  assert.ok(await tier.whenUp(5000), 'the tier connects');
  return { server, tier, lines, direct };
}

/** A 3-node Redis Cluster of its own and a tier connected to it (both stopped after the test). */
async function setupCluster(t: TestContext, tierOptions: RedisTierOptions = {}, clusterSettings: string[] = []) {
  const defer = cleanups(t);
  const cluster = await RedisClusterServers.start(3, clusterSettings);
  defer(() => cluster.stop());
  const lines: string[] = [];
  const tier = createRedisTier(cluster.address, { log: (l) => lines.push(l), ...tierOptions });
  defer(() => tier.close());
  assert.ok(await tier.whenUp(10_000), 'the cluster tier connects');
  return { cluster, tier, lines, defer };
}

/** Clean-ups run last registered first (clients before the servers they talk to), all of them even if one fails. */
function cleanups(t: TestContext): (step: () => unknown) => void {
  const steps: (() => unknown)[] = [];
  t.after(async () => {
    const errors: unknown[] = [];
    for (const step of steps.reverse()) await Promise.resolve().then(step).catch((e: unknown) => errors.push(e));
    if (errors.length > 0) throw errors[0];
  });
  return (step) => steps.push(step);
}

/** Waits until `check` holds, polling, or fails after `ms`. */
async function until(check: () => boolean, ms: number, what: string): Promise<void> {
  const end = Date.now() + ms;
  while (!check()) {
    if (Date.now() > end) assert.fail(`not within ${ms} ms: ${what}`);
    await sleep(10);
  }
}

/** Runs `call`, which must reject; returns how long it took. */
async function rejectsIn(call: () => Promise<unknown>, pattern: RegExp = /./): Promise<number> {
  const t0 = performance.now();
  await assert.rejects(call(), pattern);
  return performance.now() - t0;
}

test('multi-MB values round-trip byte for byte under the key prefix', { skip }, async (t) => {
  const { tier, direct } = await setup(t, { keyPrefix: 'test:kv:' });
  const a = randomBytes(3 * 1024 * 1024 + 5);
  // A plain Uint8Array (not a Buffer), viewing part of a larger buffer.
  const backing = new Uint8Array(randomBytes(5 * 1024 * 1024));
  const b = backing.subarray(777, 777 + 4 * 1024 * 1024 - 1);
  await tier.put('block-a', a);
  await tier.put('block-b', b);
  const got = await tier.get(['block-b', 'absent', 'block-a']);
  assert.equal(got.length, 3);
  assert.ok(Buffer.from(got[0]!).equals(Buffer.from(b)));
  assert.equal(got[1], undefined);
  assert.ok(Buffer.from(got[2]!).equals(a));
  // What another client sees under the prefixed key is the same bytes.
  assert.ok((await direct.get('test:kv:block-b'))!.equals(Buffer.from(b)));
  assert.equal(await direct.exists('block-b'), 0);
  const s = tier.stats();
  assert.deepEqual([s.puts, s.putBytes, s.gets, s.getBytes, s.failures, s.skippedWrites, s.up], [2, a.length + b.length, 2, a.length + b.length, 0, 0, true]);
  assert.deepEqual(await tier.get([]), []);
});

test('containsRun counts the leading run of stored keys: a gap ends it', { skip }, async (t) => {
  const { tier } = await setup(t);
  for (const k of ['k0', 'k1', 'k3']) await tier.put(k, randomBytes(64));
  assert.equal(await tier.containsRun(['k0', 'k1', 'k2', 'k3']), 2);
  assert.equal(await tier.containsRun(['k0', 'k1']), 2);
  assert.equal(await tier.containsRun(['k2', 'k3']), 0);
  assert.equal(await tier.containsRun(['k3']), 1);
  assert.equal(await tier.containsRun([]), 0);
});

test('bad keys and options are refused with a reason', { skip }, async (t) => {
  const { tier } = await setup(t);
  await assert.rejects(tier.put('a b', Uint8Array.of(1)), /may hold only/);
  await assert.rejects(tier.get(['x'.repeat(257)]), /at most 256/);
  assert.throws(() => createRedisTier('redis://127.0.0.1:1', { keyPrefix: 'bad prefix' }), /key prefix/);
  assert.throws(() => createRedisTier('redis://127.0.0.1:1', { commandTimeoutMs: 0 }), /commandTimeoutMs must be a positive/);
  assert.throws(() => createRedisTier('redis://127.0.0.1:1', { commandTimeoutMs: 800, silentConnectionMs: 500 }), /must exceed/);
  // A long command timeout alone stretches the silent-connection default with it.
  await createRedisTier('redis://127.0.0.1:1', { commandTimeoutMs: 8000 }).close();
  assert.throws(() => createRedisTier('redis:/127.0.0.1:1'), /not an address/);
});

test('a killed Redis: calls reject at once, up is false, the outage is logged once; back after a restart', { skip }, async (t) => {
  const commandTimeoutMs = 300;
  const { server, tier, lines } = await setup(t, { commandTimeoutMs, maxReconnectDelayMs: 100 });
  await tier.put('before', Uint8Array.of(1, 2, 3));
  assert.equal(lines.length, 0);

  await server.kill();
  await until(() => !tier.stats().up, 2000, 'stats().up turns false');
  // Let the client fail several reconnect attempts: still one line.
  await sleep(800);
  for (const call of [() => tier.get(['before']), () => tier.containsRun(['before']), () => tier.put('during', Uint8Array.of(9))]) {
    const ms = await rejectsIn(call);
    assert.ok(ms < commandTimeoutMs, `rejected after ${ms.toFixed(0)} ms`);
  }
  assert.equal(tier.stats().failures, 3);
  assert.equal(tier.stats().up, false);
  assert.equal(lines.length, 1, lines.join('\n'));
  assert.match(lines[0]!, new RegExp(`unreachable at redis://127\\.0\\.0\\.1:${server.port}/0.*compute.*retries with backoff`));

  await server.restart();
  assert.ok(await tier.whenUp(5000), 'the same tier reconnects');
  assert.equal(lines.length, 2);
  assert.match(lines[1]!, /reachable again/);
  // The restarted server is empty: the old key is absent, never stale.
  assert.deepEqual(await tier.get(['before']), [undefined]);
  await tier.put('after', Uint8Array.of(4, 5));
  assert.deepEqual(await tier.containsRun(['after']), 1);
  assert.deepEqual([...(await tier.get(['after']))[0]!], [4, 5]);

  // A second outage is logged again, once.
  await server.kill();
  await until(() => !tier.stats().up, 2000, 'stats().up turns false again');
  await sleep(300);
  assert.equal(lines.length, 3);
  assert.match(lines[2]!, /unreachable/);
});

test('a tier started while Redis is down fails fast and logs once', { skip }, async (t) => {
  const defer = cleanups(t);
  const server = await RedisServer.start();
  defer(() => server.stop());
  await server.kill();
  const lines: string[] = [];
  const tier = createRedisTier(server.address, { log: (l) => lines.push(l), maxReconnectDelayMs: 100 });
  defer(() => tier.close());
  assert.equal(await tier.whenUp(500), false);
  assert.equal(tier.stats().up, false);
  assert.ok((await rejectsIn(() => tier.get(['k']))) < 100);
  assert.equal(lines.length, 1);
  assert.match(lines[0]!, /unreachable.*ECONNREFUSED/);
  await server.restart();
  assert.ok(await tier.whenUp(5000));
  assert.equal(lines.length, 2);
});

test('a stalled Redis is cut off at the command timeout; late replies are not mistaken for later answers', { skip }, async (t) => {
  const commandTimeoutMs = 300;
  const { tier, direct } = await setup(t, { commandTimeoutMs });
  const one = randomBytes(200_000);
  const two = randomBytes(200_000);
  await tier.put('one', one);
  await tier.put('two', two);
  await direct.sendCommand(['CLIENT', 'PAUSE', '1500', 'ALL']);
  const pausedAt = performance.now();
  for (const call of [() => tier.get(['one']), () => tier.containsRun(['one', 'two']), () => tier.put('three', randomBytes(10))]) {
    const ms = await rejectsIn(call, /timed out|no answer/);
    assert.ok(ms >= commandTimeoutMs - 20 && ms < commandTimeoutMs + 250, `rejected after ${ms.toFixed(0)} ms`);
  }
  assert.ok(performance.now() - pausedAt < 1500, 'all three were cut off while Redis was still paused');
  assert.equal(tier.stats().up, true, 'a slow server is still connected');
  assert.equal(tier.stats().failures, 3);
  // When the pause ends, the replies to the abandoned calls arrive first; the next calls get their own.
  await sleep(1500 - (performance.now() - pausedAt) + 100);
  const got = await tier.get(['two', 'one']);
  assert.ok(Buffer.from(got[0]!).equals(two));
  assert.ok(Buffer.from(got[1]!).equals(one));
  assert.equal(await tier.containsRun(['two', 'missing', 'one']), 1);
});

test('a frozen Redis (the connection open, nothing answering) is dropped within silentConnectionMs although calls keep writing; back when it answers', { skip }, async (t) => {
  const silentConnectionMs = 1000;
  const { server, tier, lines } = await setup(t, { commandTimeoutMs: 200, silentConnectionMs, maxReconnectDelayMs: 100 });
  await tier.put('k', Uint8Array.of(7));
  server.freeze();
  const frozenAt = performance.now();
  // Calls keep writing to the socket, so a timer on socket inactivity alone would never fire.
  while (tier.stats().up) {
    await tier.get(['k']).catch(() => {});
    if (performance.now() - frozenAt > 5000) assert.fail('still up 5 s after Redis froze');
    await sleep(20);
  }
  const ms = performance.now() - frozenAt;
  assert.ok(ms >= silentConnectionMs - 50 && ms < silentConnectionMs + 1000, `down after ${ms.toFixed(0)} ms`);
  assert.equal(lines.length, 1, lines.join('\n'));
  assert.match(lines[0]!, /unreachable at .*no answer for 1000 ms/);
  assert.ok((await rejectsIn(() => tier.get(['k']), /unreachable/)) < 50, 'calls fail at once meanwhile');
  server.thaw();
  assert.ok(await tier.whenUp(5000), 'reconnects once Redis answers');
  assert.deepEqual([...(await tier.get(['k']))[0]!], [7]);
  assert.equal(lines.length, 2);
});

test('a thread kept busy (a long engine step) past the timeouts is not taken for a silent Redis', { skip }, async (t) => {
  const { tier, lines } = await setup(t, { commandTimeoutMs: 200, silentConnectionMs: 600 });
  const value = randomBytes(3 * 1024 * 1024);
  await tier.put('big', value);
  // Let a heartbeat PING go out, then keep the thread from reading its answer and a call's replies.
  await sleep(400);
  const call = tier.get(['big', 'big']);
  const put = tier.put('other', value);
  await busyStep(1500);
  const [got] = await call;
  assert.ok(Buffer.from(got!).equals(value));
  await put;
  await sleep(700);
  assert.equal(tier.stats().failures, 0);
  assert.equal(tier.stats().up, true);
  assert.deepEqual(lines, []);
});

test('close() ends within the command timeout when Redis is stalled, and leaves no connection behind', { skip }, async (t) => {
  const { server, tier, direct } = await setup(t, { commandTimeoutMs: 300 });
  const connections = async () => String(await direct.sendCommand(['CLIENT', 'LIST'])).trim().split('\n').length;
  await direct.sendCommand(['CLIENT', 'PAUSE', '3000', 'ALL']);
  void tier.get(['x']).catch(() => {});
  const t0 = performance.now();
  await tier.close();
  // Well before the pause ends: close() did not wait for the replies still owed.
  assert.ok(performance.now() - t0 < 1500, `close took ${(performance.now() - t0).toFixed(0)} ms`);
  // Once the pause is over, only the test's own client remains.
  const end = Date.now() + 6000;
  while ((await connections()) !== 1) {
    if (Date.now() > end) assert.fail(`connections left: ${await connections()}`);
    await sleep(50);
  }
  // A tier closed before its first connect completes: the connect in flight does not stay open.
  for (let i = 0; i < 5; i++) await createRedisTier(server.address).close();
  await sleep(300);
  assert.equal(await connections(), 1);
});

test("Redis's allkeys-lru eviction shows as absent keys, never as wrong values", { skip }, async (t) => {
  const { tier, direct } = await setup(t, {}, { maxmemory: '4mb' });
  const size = 100_000;
  const values = Array.from({ length: 100 }, () => randomBytes(size));
  const keys = values.map((_, i) => `lru-${i}`);
  for (const [i, v] of values.entries()) await tier.put(keys[i]!, v);
  const info = String(await direct.info('stats'));
  assert.ok(Number(/evicted_keys:(\d+)/.exec(info)![1]) > 0, 'Redis evicted keys');
  const got = await tier.get(keys);
  let present = 0;
  for (const [i, v] of got.entries()) {
    if (v === undefined) continue;
    present++;
    assert.ok(Buffer.from(v).equals(values[i]!), `${keys[i]} holds its own bytes`);
  }
  assert.ok(present > 0 && present < keys.length, `${present} of ${keys.length} kept`);
  const kept = (from: number, to: number) => got.slice(from, to).filter((v) => v !== undefined).length;
  assert.ok(kept(0, 30) < kept(70, 100), `old keys went first: ${kept(0, 30)} of the first 30 kept, ${kept(70, 100)} of the last 30`);
  // containsRun agrees with what get found (nothing was written in between, so nothing was evicted).
  const leading = got.findIndex((v) => v === undefined);
  assert.equal(await tier.containsRun(keys), leading < 0 ? keys.length : leading);
  assert.equal(tier.stats().failures, 0);
});

test('a Redis Cluster: values across hash slots round-trip through the per-key path', { skip: skipCluster, timeout: 60_000 }, async (t) => {
  const { cluster, tier, lines } = await setupCluster(t);
  const keys = Array.from({ length: 24 }, (_, i) => `cluster-block-${i}`);
  const values = keys.map(() => randomBytes(50_000 + Math.floor(Math.random() * 1000)));
  await Promise.all(keys.map((k, i) => tier.put(k, values[i]!)));
  const got = await tier.get(['absent', ...keys]);
  assert.equal(got[0], undefined);
  for (const [i, v] of got.slice(1).entries()) assert.ok(Buffer.from(v!).equals(values[i]!), keys[i]);
  assert.equal(await tier.containsRun(keys), keys.length);
  assert.equal(await tier.containsRun([...keys.slice(0, 5), 'absent', ...keys.slice(5)]), 5);
  // The keys really are spread over the nodes (so a single-slot pipeline could not have served them).
  const perNode = await Promise.all(
    cluster.nodes.map(async (n) => {
      const c = await directClient(n.port);
      try {
        return await c.dbSize();
      } finally {
        c.destroy();
      }
    }),
  );
  assert.ok(perNode.filter((n) => n > 0).length >= 2, `keys per node: ${perNode.join(', ')}`);
  assert.equal(perNode.reduce((a, b) => a + b, 0), keys.length);
  assert.equal(tier.stats().failures, 0);
  assert.equal(lines.length, 0, lines.join('\n'));
});

test('a Redis Cluster that goes down: calls end within the timeout, one line per outage, the same tier recovers', { skip: skipCluster, timeout: 90_000 }, async (t) => {
  const commandTimeoutMs = 400;
  const { cluster, tier, lines } = await setupCluster(t, { commandTimeoutMs, maxReconnectDelayMs: 200 });
  const keys = Array.from({ length: 12 }, (_, i) => `down-${i}`);
  const values = keys.map(() => randomBytes(1000));
  await Promise.all(keys.map((k, i) => tier.put(k, values[i]!)));
  assert.equal(await tier.containsRun(keys), keys.length, 'every node has a connection now');

  // One node gone: calls that need it end (reject) within the timeout instead of hanging.
  await cluster.nodes[0]!.kill();
  const ms = await rejectsIn(() => tier.get(keys));
  assert.ok(ms < commandTimeoutMs + 250, `rejected after ${ms.toFixed(0)} ms`);

  // All gone: the tier notices, says so once and fails fast.
  await Promise.all(cluster.nodes.slice(1).map((n) => n.kill()));
  await until(() => !tier.stats().up, 5000, 'stats().up turns false');
  await sleep(500);
  assert.ok((await rejectsIn(() => tier.containsRun(keys), /unreachable/)) < 50);
  assert.equal(lines.length, 1, lines.join('\n'));
  assert.match(lines[0]!, /unreachable at redis\+cluster:\/\//);

  for (const n of cluster.nodes) await n.restart();
  assert.ok(await tier.whenUp(20_000), 'the same tier reconnects to the cluster');
  assert.equal(lines.length, 2, lines.join('\n'));
  assert.match(lines[1]!, /reachable again/);
  // The nodes came back empty: keys read as absent (once the cluster serves every slot again), never stale.
  let got: (Uint8Array | undefined)[] | undefined;
  const end = Date.now() + 20_000;
  while (!got) {
    got = await tier.get(keys).catch(() => undefined);
    if (!got && Date.now() > end) assert.fail('the cluster did not serve reads again within 20 s');
    if (!got) await sleep(200);
  }
  assert.deepEqual(got, keys.map(() => undefined));
  await tier.put(keys[0]!, values[0]!);
  assert.ok(Buffer.from((await tier.get([keys[0]!]))[0]!).equals(values[0]!));
});

test('a Redis Cluster: a thread kept busy past the timeouts is not taken for a silent node', { skip: skipCluster, timeout: 60_000 }, async (t) => {
  const { tier, lines } = await setupCluster(t, { commandTimeoutMs: 200, silentConnectionMs: 600 });
  const keys = Array.from({ length: 6 }, (_, i) => `busy-${i}`);
  const value = randomBytes(1024 * 1024);
  await Promise.all(keys.map((k) => tier.put(k, value)));
  // Let the heartbeats go out, then keep the thread from reading their answers and the calls' replies.
  await sleep(400);
  const call = tier.get(keys);
  const put = tier.put('other', value);
  await busyStep(1500);
  const got = await call;
  assert.ok(got.every((v) => v !== undefined && Buffer.from(v).equals(value)));
  await put;
  await sleep(700);
  assert.equal(tier.stats().failures, 0);
  assert.equal(tier.stats().up, true);
  assert.deepEqual(lines, []);
});

test('a Redis Cluster node that freezes (connection open, nothing answering): its calls end at the deadline, the others keep serving, it is served again once it answers', { skip: skipCluster, timeout: 60_000 }, async (t) => {
  const commandTimeoutMs = 200;
  // As a cache should run: a node the others judge failed (after cluster-node-timeout, 2 s here) costs
  // only its own slots; with full coverage required, every node would refuse every command meanwhile.
  const { cluster, tier, lines, defer } = await setupCluster(t, { commandTimeoutMs, silentConnectionMs: 1000 }, ['--cluster-require-full-coverage', 'no']);
  const keys = Array.from({ length: 24 }, (_, i) => `frozen-${i}`);
  await Promise.all(keys.map((k) => tier.put(k, Buffer.from(k))));
  const frozen = cluster.nodes[0]!;
  const direct = await directClient(frozen.port);
  const held = new Set((await direct.keys('vserve:kv:frozen-*')).map((k) => String(k)));
  direct.destroy();
  const onFrozen = keys.map((k) => held.has(`vserve:kv:${k}`));
  assert.ok(onFrozen.some(Boolean) && !onFrozen.every(Boolean), 'the keys span the frozen node and the others');
  const frozenKey = keys[onFrozen.indexOf(true)]!;
  const elsewhere = keys.filter((_, i) => !onFrozen[i]);
  frozen.freeze();
  defer(() => frozen.thaw());
  // Past silentConnectionMs (the heartbeat drops the node's connection meanwhile, and ioredis opens another).
  const end = performance.now() + 2500;
  while (performance.now() < end) {
    // It ends: at the deadline, or (on a machine so loaded that the deadline's timer fired late) after
    // the few restarts the tier allows a late timer. A call that waited on the frozen node would hang.
    const ms = await rejectsIn(() => tier.get([frozenKey]));
    assert.ok(ms < 4 * commandTimeoutMs + 250, `a call on the frozen node took ${ms.toFixed(0)} ms`);
    const got = await tier.get(elsewhere);
    assert.deepEqual(got.map((v) => Buffer.from(v!).toString()), elsewhere);
  }
  assert.equal(tier.stats().up, true, 'one silent node is not an outage of the tier');
  frozen.thaw();
  const back = performance.now() + 10_000;
  for (;;) {
    const all = await tier.get(keys).catch(() => undefined);
    if (all && all.every((v, i) => v !== undefined && Buffer.from(v).toString() === keys[i])) break;
    if (performance.now() > back) assert.fail('the thawed node was not served again within 10 s');
    await sleep(100);
  }
  assert.deepEqual(lines, []);
});

test('rediss:// talks TLS, and refuses a server whose certificate it cannot verify', { skip: skipTls }, async (t) => {
  const defer = cleanups(t);
  const dir = mkdtempSync(join(tmpdir(), 'vserve-redis-tls-'));
  defer(() => rmSync(dir, { recursive: true, force: true }));
  const cert = join(dir, 'cert.pem');
  const key = join(dir, 'key.pem');
  const made = spawnSync('openssl', ['req', '-x509', '-newkey', 'ec', '-pkeyopt', 'ec_paramgen_curve:prime256v1', '-nodes', '-keyout', key, '-out', cert, '-days', '1', '-subj', '/CN=localhost', '-addext', 'subjectAltName=IP:127.0.0.1'], { encoding: 'utf8' });
  assert.equal(made.status, 0, made.stderr);
  const tlsPort = await freePort();
  const server = await RedisServer.start({
    settings: ['--tls-port', String(tlsPort), '--tls-cert-file', cert, '--tls-key-file', key, '--tls-ca-cert-file', cert, '--tls-auth-clients', 'no'],
  });
  defer(() => server.stop());

  const tier = createRedisTier(`rediss://127.0.0.1:${tlsPort}`, { tls: { ca: [readFileSync(cert)] } });
  defer(() => tier.close());
  assert.ok(await tier.whenUp(5000), 'connects over TLS');
  const value = randomBytes(300_000);
  await tier.put('tls-block', value);
  assert.ok(Buffer.from((await tier.get(['tls-block']))[0]!).equals(value));

  const lines: string[] = [];
  const untrusting = createRedisTier(`rediss://127.0.0.1:${tlsPort}`, { log: (l) => lines.push(l), maxReconnectDelayMs: 100 });
  defer(() => untrusting.close());
  assert.equal(await untrusting.whenUp(1000), false);
  assert.equal(lines.length, 1);
  assert.match(lines[0]!, /unreachable at rediss:\/\/127\.0\.0\.1.*certificate/i);
  // A plain client on the TLS port gets no answer it could take for data.
  const plain = createRedisTier(`redis://127.0.0.1:${tlsPort}`, { connectTimeoutMs: 300, maxReconnectDelayMs: 100 });
  defer(() => plain.close());
  assert.equal(await plain.whenUp(800), false);
});
