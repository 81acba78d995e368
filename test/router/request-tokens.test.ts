// The router's prompt tokens are exactly the replica's: for chat (under several chat templates written
// into copies of the bundled model) and completion bodies, the count equals the replica's
// usage.prompt_tokens, every full block's key is among the blocks the replica reported storing, and the
// token ids sent back as a prompt make the replica continue with the same greedy text.
import assert from 'node:assert/strict';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, test } from 'node:test';
import { BlockHasher } from '../../src/kv/block-hash.js';
import { sseEvents } from '../../src/loadgen/sse-frames.js';
import { GGUFFile } from '../../src/model/gguf/reader.js';
import { GGUFWriter, inferTyped } from '../../src/model/gguf/writer.js';
import { RequestTokens } from '../../src/router/request-tokens.js';
import type { Endpoint } from '../../src/server/openai-format.js';
import { CHAT_TEMPLATE_FAMILIES, chatTemplateFixture, type ChatTemplateFamily } from '../chat-template-fixtures.js';
import { bundledModel } from '../paths.js';
import { eventually } from '../server/helpers.js';
import { post, startRouter } from './router-helpers.js';
import { startReplica, stopReplicas } from './replica-process.js';

const dir = mkdtempSync(join(tmpdir(), 'vserve-router-tokens-'));
after(async () => {
  await stopReplicas();
  rmSync(dir, { recursive: true, force: true });
});

/** The bundled model with a family's chat template (and its BOS/EOS texts as the template's variables). */
function withTemplate(family: ChatTemplateFamily): string {
  const { template } = chatTemplateFixture(family);
  const src = GGUFFile.open(bundledModel);
  try {
    const w = new GGUFWriter();
    for (const [key, value] of src.metadata) w.set(key, inferTyped(value));
    w.setString('tokenizer.chat_template', template);
    for (const t of src.tensors) w.addTensor(t.name, t.dims.map(Number), t.type);
    const path = join(dir, `${family}.gguf`);
    w.writeFile(path, (t) => [src.tensorBytes(src.tensors.find((x) => x.name === t.name)!)]);
    return path;
  } finally {
    src.close();
  }
}

const CHATS: unknown[][] = [
  [{ role: 'system', content: 'You tell short stories.' }, { role: 'user', content: 'Tell me about Lily.' }, { role: 'assistant', content: 'Lily had a red ball.' }, { role: 'user', content: 'What did she do with it?' }],
  [{ role: 'user', content: [{ type: 'text', text: 'Once upon a time ' }, { type: 'text', text: 'there was a cat.' }], name: 'tim' }],
  // Two user turns in a row: templates that need alternating roles refuse it, the others render it.
  [{ role: 'user', content: 'Hello.' }, { role: 'user', content: 'Are you there?' }],
  // An earlier call and its result: they reach the template as fields (or as text where it reads none), here as on the replica.
  [
    { role: 'user', content: 'Is it sunny?' },
    { role: 'assistant', content: null, tool_calls: [{ id: 'abcDEF123', type: 'function', function: { name: 'get_weather', arguments: '{"city": "Oslo"}' } }] },
    { role: 'tool', tool_call_id: 'abcDEF123', content: 'Sunny.' },
    { role: 'user', content: 'So?' },
  ],
];

const COMPLETIONS: unknown[] = [
  'Once upon a time, there was a little girl named Lily.',
  // Control-token texts in a raw prompt are read as those tokens, on the replica and here alike.
  '<s>Once upon a time</s> there was <unk> a dog',
  ['One day, Tom went to the park.'],
];

/** Each body (and each with a cache_salt) against the replica serving `model`. */
async function checkAgainstReplica(model: string, bodies: { endpoint: Endpoint; body: Record<string, unknown> }[]): Promise<number> {
  const replica = await startReplica({ model });
  const tokens = RequestTokens.open(model);
  const abort = new AbortController();
  try {
    const res = await fetch(`${replica.url}/v1/kv/events`, { signal: abort.signal });
    const stored = new Set<string>();
    let hello: { fingerprint: string; blockTokens: number } | undefined;
    void (async () => {
      for await (const e of sseEvents(res.body!)) {
        const data = JSON.parse(e.data);
        if (e.event === 'hello') hello = data;
        else if (e.event === 'blocks') for (const k of data.stored) stored.add(k);
      }
    })().catch(() => {});
    await eventually(async () => hello !== undefined, 'the hello');
    const hasher = new BlockHasher(hello!.fingerprint, hello!.blockTokens);
    let checked = 0;
    for (const { endpoint, body } of bodies) {
      const path = endpoint === 'chat' ? '/v1/chat/completions' : '/v1/completions';
      const request = { ...body, max_tokens: 6, temperature: 0 };
      const ours = tokens.prompt(endpoint, request);
      const theirs = await post(replica.url, path, request);
      const what = `${model} ${path} ${JSON.stringify(body)}`;
      if (!ours) {
        assert.equal(theirs.status, 400, `${what}: the router could not read it, so the replica must refuse it (${JSON.stringify(theirs.json)})`);
        continue;
      }
      assert.equal(theirs.status, 200, `${what}: ${JSON.stringify(theirs.json)}`);
      assert.equal(ours.tokens.length, theirs.json.usage.prompt_tokens, what);
      assert.equal(ours.salt, (body.cache_salt as string | undefined) ?? '');
      // Every full block of the prompt is a block the replica stored: same tokens, same salt.
      const chain = hasher.chain(ours.tokens, ours.salt);
      await eventually(async () => chain.every((k) => stored.has(k)), `${what}: the replica storing the prompt's ${chain.length} blocks`, 80);
      // And the tail: the ids themselves make the replica continue as it did.
      const text = endpoint === 'chat' ? theirs.json.choices[0].message.content : theirs.json.choices[0].text;
      const again = await post(replica.url, '/v1/completions', { prompt: ours.tokens, max_tokens: 6, temperature: 0 });
      assert.equal(again.json.choices[0].text, text, `${what}: the same continuation from the router's token ids`);
      checked++;
    }
    return checked;
  } finally {
    abort.abort();
    await replica.kill();
  }
}

const chatBodies = (salt?: string) => CHATS.map((messages) => ({ endpoint: 'chat' as const, body: { messages, ...(salt ? { cache_salt: salt } : {}) } }));

test('completions and chat with the bundled model (no template: the fallback format)', async () => {
  const bodies = [
    ...COMPLETIONS.map((prompt) => ({ endpoint: 'completion' as const, body: { prompt } })),
    { endpoint: 'completion' as const, body: { prompt: [1, 300, 42, 17, 9, 255, 120, 33, 77, 401, 12, 66, 88, 99, 100, 101, 102, 103] } },
    { endpoint: 'completion' as const, body: { prompt: COMPLETIONS[0], cache_salt: 'tenant-a' } },
    ...chatBodies(),
  ];
  assert.equal(await checkAgainstReplica(bundledModel, bodies), bodies.length);
});

for (const family of CHAT_TEMPLATE_FAMILIES) {
  test(`chat under the ${family} template`, async () => {
    const checked = await checkAgainstReplica(withTemplate(family), [...chatBodies(), ...chatBodies('tenant-b').slice(0, 1)]);
    // Templates that refuse two user turns in a row leave one body to the replica's 400.
    assert.ok(checked >= 3, `${checked} bodies compared`);
  });
}

test('a request\'s tools are in the router\'s prompt tokens as the replica\'s template renders them (and not with tool_choice "none")', async () => {
  const model = withTemplate('llama-3');
  const replica = await startReplica({ model });
  const tokens = RequestTokens.open(model);
  try {
    const tools = [{ type: 'function', function: { name: 'get_weather', parameters: { type: 'object', properties: { city: { type: 'string' } } } } }];
    const base = { messages: [{ role: 'user', content: 'Is it sunny?' }], tools, max_tokens: 60 };
    for (const body of [{ ...base, tool_choice: 'required' }, { ...base, tool_choice: 'none' }]) {
      const theirs = await post(replica.url, '/v1/chat/completions', body);
      assert.equal(theirs.status, 200, JSON.stringify(theirs.json));
      assert.equal(tokens.prompt('chat', body)!.tokens.length, theirs.json.usage.prompt_tokens, body.tool_choice);
    }
    assert.ok(tokens.prompt('chat', { ...base, tool_choice: 'required' })!.tokens.length > tokens.prompt('chat', { ...base, tool_choice: 'none' })!.tokens.length, 'the tools are rendered');
  } finally {
    await replica.kill();
  }
});

test('a decode-time KV policy makes a prompt unshareable; a prompt-time one does not; bad bodies are not judged', () => {
  const tokens = RequestTokens.open(bundledModel);
  assert.equal(tokens.prompt('completion', { prompt: 'Once upon a time', kv_policy: 'h2o', kv_budget: 32 })!.shareable, false);
  assert.equal(tokens.prompt('completion', { prompt: 'Once upon a time', kv_policy: 'snapkv', kv_budget: 32 })!.shareable, true);
  assert.equal(tokens.prompt('completion', { prompt: 'Once upon a time' })!.shareable, true);
  assert.equal(tokens.prompt('completion', { prompt: 'x', max_tokens: 'many' }), undefined);
  assert.equal(tokens.prompt('chat', { messages: [] }), undefined);
  assert.equal(tokens.prompt('chat', undefined), undefined);
  assert.equal(tokens.prompt('completion', { prompt: 'Once upon a time '.repeat(400) }), undefined, 'longer than the model context');
});

test('a replica serving another file than the router\'s -m gets no requests, and the router says why', async () => {
  const replica = await startReplica();
  const router = await startRouter([replica.url], { modelPath: withTemplate('llama-3') });
  try {
    await eventually(async () => router.router.pool.replicas[0]!.params !== undefined, 'the block stream');
    const health = await fetch(`${router.url}/health`);
    assert.equal(health.status, 503);
    const body = (await health.json()) as { replicas: { problem?: string }[] };
    assert.match(body.replicas[0]!.problem!, /serves another model file than the router's -m \(model fingerprint \S+ vs \S+\)/);
    assert.equal((await post(router.url, '/v1/completions', { prompt: 'Once', max_tokens: 2 })).status, 503);
  } finally {
    await router.close();
    await replica.kill();
  }
});
