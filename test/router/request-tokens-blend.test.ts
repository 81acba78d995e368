// Requests that mark documents (a blending completion prompt cut at the separator, chat parts marked
// as documents) are tokenized by the router exactly as the replica's engine tokenizes them: the ids the
// router computes equal the ids the replica's worker receives, given the replica's separator.
import assert from 'node:assert/strict';
import { after, before, test } from 'node:test';
import type { ToWorker } from '../../src/engine/engine-messages.js';
import { RequestTokens } from '../../src/router/request-tokens.js';
import type { Endpoint } from '../../src/server/openai-format.js';
import { bundledModel } from '../paths.js';
import { postJson, startServer, type TestServer } from '../server/helpers.js';

const SEPARATOR = '\n---\n';
let replica: TestServer;
const submitted: number[][] = [];
before(async () => {
  replica = await startServer({}, { blendSeparator: SEPARATOR });
  const worker = (replica.engine as unknown as { worker: { postMessage(m: ToWorker): void } }).worker;
  const post = worker.postMessage.bind(worker);
  worker.postMessage = (m: ToWorker) => {
    if (m.type === 'submit') submitted.push(m.input as number[]);
    post(m);
  };
});
after(() => replica.close());

/** The ids the replica's worker got for a body. */
async function replicaTokens(endpoint: Endpoint, body: Record<string, unknown>): Promise<number[]> {
  const r = await postJson(`${replica.url}/v1/${endpoint === 'chat' ? 'chat/completions' : 'completions'}`, { ...body, max_tokens: 1 });
  assert.equal(r.status, 200, r.text);
  return submitted.at(-1)!;
}

const LILY = 'Lily had a red ball.';
const TOM = 'Tom saw a big dog.';
const doc = (text: string) => ({ type: 'text', text, document: true });
const text = (t: string) => ({ type: 'text', text: t });

const BODIES: { endpoint: Endpoint; body: Record<string, unknown> }[] = [
  { endpoint: 'completion', body: { prompt: `Stories.${SEPARATOR}${LILY}${SEPARATOR}${TOM}${SEPARATOR}What did Lily have?`, blend: true } },
  { endpoint: 'completion', body: { prompt: `Stories.${SEPARATOR}${LILY}${SEPARATOR}What did Lily have?`, blend: { recompute: 0.3 } } },
  { endpoint: 'completion', body: { prompt: `Stories.${SEPARATOR}${LILY}${SEPARATOR}What did Lily have?` } },
  { endpoint: 'chat', body: { messages: [{ role: 'system', content: [text('Stories. '), doc(TOM)] }, { role: 'user', content: [text('Read: '), doc(LILY), text(' What did Lily have?')] }] } },
  { endpoint: 'chat', body: { messages: [{ role: 'user', content: [doc(LILY), doc(TOM), text('Why?')] }], blend: false } },
];

test('the router\'s ids for marked requests are the replica\'s, with the replica\'s separator', async () => {
  const router = RequestTokens.open(bundledModel, SEPARATOR);
  const unaware = RequestTokens.open(bundledModel);
  for (const { endpoint, body } of BODIES) {
    const expected = await replicaTokens(endpoint, body);
    assert.deepEqual(router.prompt(endpoint, body)!.tokens, expected, JSON.stringify(body));
  }
  // A router left at the default separator cuts a blending prompt differently: the separator matters.
  const { endpoint, body } = BODIES[0]!;
  assert.notDeepEqual(unaware.prompt(endpoint, body)!.tokens, await replicaTokens(endpoint, body));
});
