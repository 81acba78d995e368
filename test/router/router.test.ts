// The router over two replica processes: with the prefix policy a conversation's later turns go to the
// replica that computed its earlier ones (the replica reports them cached, and the router's metrics say
// the cached prefix decided); round-robin alternates whatever the caches hold.
import assert from 'node:assert/strict';
import { after, before, test } from 'node:test';
import { STORIES_GREEDY } from '../paths.js';
import { metric, post, replicasReady, startRouter, type TestRouter } from './router-helpers.js';
import { startReplica, stopReplicas, type ReplicaProcess } from './replica-process.js';

let replicas: ReplicaProcess[];
let prefix: TestRouter;
before(async () => {
  replicas = await Promise.all([startReplica(), startReplica()]);
  prefix = await startRouter(replicas.map((r) => r.url));
  await replicasReady(prefix);
});
after(async () => {
  await prefix?.close();
  await stopReplicas();
});

const SYSTEMS = [
  `You tell stories about Lily.${STORIES_GREEDY}`,
  'You tell stories about a dog named Max who lived on a farm with a cow, a pig and a big red barn by the river.',
  'You tell stories about Tom and his blue boat. Every morning Tom sailed out to sea to catch fish for his mother.',
  'You tell stories about a tiny bird who could not fly. She hopped from branch to branch and sang to the other birds.',
];
const QUESTIONS = ['Tell me a story.', 'What happened next?', 'And then?'];

type Message = { role: string; content: string };
const cachedOf = (a: { json: any }) => a.json.usage.prompt_tokens_details.cached_tokens as number;

test('prefix policy: each conversation stays on the replica that holds it, and its later turns are cached there', async () => {
  const conversations: Message[][] = SYSTEMS.map((content) => [{ role: 'system', content }]);
  const served: string[][] = SYSTEMS.map(() => []);
  const ask = async (c: number, turn: number) => {
    conversations[c]!.push({ role: 'user', content: QUESTIONS[turn]! });
    const a = await post(prefix.url, '/v1/chat/completions', { messages: conversations[c], max_tokens: 12, temperature: 0 });
    assert.equal(a.status, 200, JSON.stringify(a.json));
    conversations[c]!.push({ role: 'assistant', content: a.json.choices[0].message.content });
    served[c]!.push(a.replica!);
    return a;
  };
  // First turns together: the load spreads them over both replicas.
  await Promise.all(SYSTEMS.map((_, c) => ask(c, 0)));
  assert.deepEqual(new Set(served.map((s) => s[0])), new Set(replicas.map((r) => r.url)), 'both replicas hold conversations');
  // Later turns one at a time, so that only the caches tell the replicas apart.
  const before = await (await fetch(`${prefix.url}/metrics`)).text();
  let later = 0;
  for (let turn = 1; turn < QUESTIONS.length; turn++) {
    for (let c = 0; c < SYSTEMS.length; c++) {
      const a = await ask(c, turn);
      later++;
      assert.equal(a.replica, served[c]![0], `conversation ${c}, turn ${turn} went to the replica of its first turn`);
      // The system prompt and the earlier turns: at least several blocks of 16.
      assert.ok(cachedOf(a) >= 32, `conversation ${c}, turn ${turn}: ${cachedOf(a)} of ${a.json.usage.prompt_tokens} prompt tokens cached`);
    }
  }
  const metrics = await (await fetch(`${prefix.url}/metrics`)).text();
  const delta = (name: string, labels: Record<string, string> = {}) => metric(metrics, name, labels) - metric(before, name, labels);
  assert.equal(delta('vserve:router_decisions_total', { policy: 'prefix', basis: 'cached_prefix' }), later, metrics);
  assert.ok(delta('vserve:router_overlap_blocks_total') >= 2 * later, 'the router saw the cached blocks it routed by');
  assert.equal(delta('vserve:router_requests_total', { endpoint: 'chat' }), later);
  for (const r of replicas) {
    assert.equal(metric(metrics, 'vserve:router_replica_up', { replica: r.url }), 1);
    assert.ok(metric(metrics, 'vserve:router_replica_cached_blocks', { replica: r.url }) > 0);
  }
});

test('round-robin alternates between the replicas, cache or not', async () => {
  const rr = await startRouter(replicas.map((r) => r.url), { policy: 'round-robin' });
  try {
    await replicasReady(rr);
    const body = { prompt: `Once upon a time${STORIES_GREEDY}`, max_tokens: 4, temperature: 0 };
    const answers = [];
    for (let i = 0; i < 4; i++) answers.push(await post(rr.url, '/v1/completions', body));
    assert.ok(answers.every((a) => a.status === 200));
    const order = answers.map((a) => a.replica);
    assert.notEqual(order[0], order[1]);
    assert.deepEqual(order, [order[0], order[1], order[0], order[1]]);
    const metrics = await (await fetch(`${rr.url}/metrics`)).text();
    assert.equal(metric(metrics, 'vserve:router_decisions_total', { policy: 'round-robin', basis: 'turn' }), 4);
    for (const r of replicas) assert.equal(metric(metrics, 'vserve:router_requests_total', { replica: r.url }), 2);
  } finally {
    await rr.close();
  }
});

test('/v1/models comes from a replica; /health lists the replicas; unknown routes are 404', async () => {
  const models = await (await fetch(`${prefix.url}/v1/models`)).json() as { data: { id: string }[] };
  assert.equal(models.data[0]!.id, 'stories260K');
  const health = await (await fetch(`${prefix.url}/health`)).json() as { status: string; policy: string; replicas: { url: string; state: string; takesRequests: boolean }[] };
  assert.equal(health.status, 'ok');
  assert.equal(health.policy, 'prefix');
  assert.deepEqual(health.replicas.map((r) => [r.url, r.state, r.takesRequests]), replicas.map((r) => [r.url, 'up', true]));
  const missing = await fetch(`${prefix.url}/v1/nothing`);
  assert.equal(missing.status, 404);
  assert.equal(((await missing.json()) as { error: { code: string } }).error.code, 'not_found');
  // A replica's 400 comes back as it was.
  const bad = await post(prefix.url, '/v1/completions', { prompt: 'x', max_tokens: -1 });
  assert.equal(bad.status, 400);
  assert.equal(bad.json.error.param, 'max_tokens');
});
