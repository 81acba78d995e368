// A replica killed under load: the stream it was sending ends with an error event, the requests waiting
// in its queue are retried on the other replica, every request after the kill succeeds, and the replica
// takes requests again once it is back. A replica whose keys differ from the others' gets none.
import assert from 'node:assert/strict';
import { after, before, test } from 'node:test';
import { eventually } from '../server/helpers.js';
import { metric, openStream, post, replicasReady, startRouter, type StreamAnswer, type TestRouter } from './router-helpers.js';
import { REPLICA_ARGS, startReplica, stopReplicas, type ReplicaProcess } from './replica-process.js';

let replicas: ReplicaProcess[];
let rr: TestRouter;
before(async () => {
  // Eight slots each: one request of eight choices fills a replica, and what follows waits in its queue.
  // Two tokens a step keep that request's stream going for seconds (at the default budget the bundled
  // model finished it in under one on a fast host, sometimes before the queue behind it was seen).
  const args = [...REPLICA_ARGS, '--max-seqs', '8', '--max-batch-tokens', '2'];
  replicas = await Promise.all([startReplica({ args }), startReplica({ args })]);
  rr = await startRouter(replicas.map((r) => r.url), { policy: 'round-robin' });
  await replicasReady(rr);
});
after(async () => {
  await rr?.close();
  await stopReplicas();
});

/** A stream that runs for a while: eight choices of 480 tokens, end-of-text banned. */
const LONG_STREAM = { prompt: 'Once upon a time', max_tokens: 480, n: 8, temperature: 0.8, logit_bias: { '2': -100 } };

const short = (i: number) => ({ prompt: `Once upon a time, there was a little ${['dog', 'cat', 'girl', 'boy', 'bird', 'fish'][i % 6]}`, max_tokens: 8, temperature: 0 });

/** Every frame of a stream that finished normally: content, then [DONE], no error. */
function assertComplete(a: StreamAnswer, what: string): void {
  assert.equal(a.status, 200, what);
  assert.equal(a.frames.at(-1), '[DONE]', what);
  assert.ok(!a.frames.some((f) => typeof f === 'object' && f !== null && 'error' in f), `${what}: ${JSON.stringify(a.frames.at(-2))}`);
}

test('kill a replica under load: its stream ends with an error event, every other request succeeds', async () => {
  const stream = await openStream(rr.url, '/v1/completions', LONG_STREAM);
  assert.equal(stream.status, 200);
  await stream.first;
  const victim = replicas.find((r) => r.url === stream.replica)!;
  const survivor = replicas.find((r) => r !== victim)!;
  const victimView = rr.router.pool.replicas.find((r) => r.url === victim.url)!;

  // Requests that alternate between the replicas: those on the victim wait behind the long stream.
  const waiting = [
    ...[0, 1, 2, 3].map((i) => post(rr.url, '/v1/completions', short(i))),
    ...[4, 5].map(async (i) => (await openStream(rr.url, '/v1/completions', short(i))).done),
  ];
  await eventually(async () => {
    const m = await (await fetch(`${victim.url}/metrics`)).text();
    const queued = metric(m, 'vserve:num_requests_waiting');
    return queued >= 1 && queued === victimView.inFlight - 1;
  }, 'requests queued on the victim behind the stream');
  const queuedOnVictim = victimView.inFlight - 1;
  await victim.kill('SIGKILL');

  const cut = await stream.done;
  const content = cut.frames.filter((f) => typeof f === 'object' && f !== null && 'choices' in f);
  assert.ok(content.length > 0, 'the stream had begun');
  assert.equal(cut.frames.at(-1), '[DONE]');
  const error = (cut.frames.at(-2) as { error?: { code: string; message: string } }).error;
  assert.equal(error?.code, 'replica_failed', JSON.stringify(cut.frames.at(-2)));
  assert.match(error!.message, new RegExp(`The replica ${victim.url} failed while streaming this response .*incomplete`));

  // The queued ones were retried on the survivor; all of them answered in full.
  const answers = await Promise.all(waiting);
  for (const [i, a] of answers.entries()) {
    if ('frames' in a) assertComplete(a, `streamed request ${i}`);
    else {
      assert.equal(a.status, 200, JSON.stringify(a.json));
      assert.equal(a.json.choices[0].finish_reason, 'length');
    }
    assert.equal(a.replica, survivor.url, `request ${i} was answered by the survivor`);
  }

  // Requests after the kill: all succeed, streamed or not.
  const afterKill = await Promise.all([
    ...[0, 1, 2].map((i) => post(rr.url, '/v1/chat/completions', { messages: [{ role: 'user', content: `Tell me story ${i}` }], max_tokens: 6, temperature: 0 })),
    ...[3, 4, 5].map(async (i) => (await openStream(rr.url, '/v1/completions', short(i))).done),
  ]);
  for (const [i, a] of afterKill.entries()) {
    if ('frames' in a) assertComplete(a, `streamed request ${i} after the kill`);
    else assert.equal(a.status, 200, JSON.stringify(a.json));
  }

  const metrics = await (await fetch(`${rr.url}/metrics`)).text();
  assert.equal(metric(metrics, 'vserve:router_broken_streams_total', { replica: victim.url }), 1);
  assert.ok(metric(metrics, 'vserve:router_retries_total', { replica: victim.url }) >= queuedOnVictim, metrics);
  assert.equal(metric(metrics, 'vserve:router_replica_up', { replica: victim.url }), 0);
  assert.equal(metric(metrics, 'vserve:router_replica_up', { replica: survivor.url }), 1);
  assert.ok(rr.events.some((l) => l.startsWith(`replica ${victim.url}: down: `)), rr.events.join('\n'));

  // Back on the same port: the router sees it healthy and sends it requests again.
  const revived = await startReplica({ port: victim.port });
  replicas[replicas.indexOf(victim)] = revived;
  await replicasReady(rr);
  assert.ok(rr.events.includes(`replica ${victim.url}: up again`), rr.events.join('\n'));
  const next = [await post(rr.url, '/v1/completions', short(0)), await post(rr.url, '/v1/completions', short(1))];
  assert.deepEqual(new Set(next.map((a) => a.replica)), new Set([victim.url, survivor.url]));
});

test('with no replica up the router answers 503, not a hang', async () => {
  const lone = await startReplica();
  const router = await startRouter([lone.url]);
  try {
    await replicasReady(router);
    await lone.kill('SIGKILL');
    const a = await post(router.url, '/v1/completions', short(0));
    assert.ok(a.status === 502 || a.status === 503, `${a.status} ${JSON.stringify(a.json)}`);
    assert.match(a.json.error.message, /every replica|No replica is up/);
    await eventually(async () => (await fetch(`${router.url}/health`)).status === 503, 'the router health saying no replica');
    const b = await post(router.url, '/v1/completions', short(0));
    assert.equal(b.status, 503);
    assert.equal(b.json.error.code, 'no_replica');
  } finally {
    await router.close();
  }
});

test('a replica whose keys differ gets no requests, and the router says what differs', async () => {
  const odd = await startReplica({ args: ['--kv-manager', 'paged', '--block-size', '32', '--threads', '1'] });
  const router = await startRouter([replicas[0]!.url, odd.url]);
  try {
    await eventually(async () => router.router.pool.replicas.every((r) => r.params !== undefined), 'both block streams');
    const health = await (await fetch(`${router.url}/health`)).json() as { replicas: { url: string; takesRequests: boolean; problem?: string }[] };
    const problem = health.replicas.find((r) => r.url === odd.url)!;
    assert.equal(problem.takesRequests, false);
    assert.match(problem.problem!, new RegExp(`prefix-cache keys differ from ${replicas[0]!.url}'s: block size 32 vs 16 tokens`));
    assert.ok(router.events.some((l) => l.includes(`replica ${odd.url}: gets no requests`)));
    for (let i = 0; i < 3; i++) assert.equal((await post(router.url, '/v1/completions', short(i))).replica, replicas[0]!.url);
  } finally {
    await router.close();
    await odd.kill();
  }
});
