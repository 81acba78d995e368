// Automatic prefix caching in the engine: greedy outputs equal those of a sequence run alone (and so
// those with the cache off) for every KV manager and scheduler, whether the cached prefix was computed in
// another batch, another chunking, a previous turn, or by a request running beside this one; cached
// tokens are reported; salts keep tenants apart; and every page comes back when the cache is cleared.
import assert from 'node:assert/strict';
import { test } from 'node:test';
import type { EngineCore } from '../../src/engine/engine-core.js';
import type { EngineOptions } from '../../src/engine/engine-types.js';
import { createEngineCore } from '../../src/engine/engine-setup.js';
import type { ManagedKV } from '../../src/engine/managed-kv.js';
import { VirtualKVManager } from '../../src/kv/index.js';
import { loadModel } from '../../src/model/load.js';
import { bundledModel, STORIES_GREEDY } from '../paths.js';
import { aloneTokens, drain, KV_MANAGERS, record, SCHEDULERS, tinyModel, virtualUnavailable, type Outcome } from './engine-helpers.js';

const MAX_CONTEXT = 256;

function core(opts: EngineOptions, model = tinyModel()): EngineCore {
  return createEngineCore(model.model, model.tokenizer, { maxSeqs: 8, maxBatchTokens: 48, maxContext: MAX_CONTEXT, pageSize: 4096, blockSize: 16, ...opts });
}

const encode = (text: string) => tinyModel().tokenizer.encode(text, { addSpecial: true });
const story = `Once upon a time${STORIES_GREEDY}`;
/** Prompts that share a long start (the story) and differ after it, plus one that shares nothing. */
const sharing = [story, story + ' The end', story.slice(0, 200) + ' Lily ran', 'A cat sat on a mat.'].map(encode);

function blockTokens(c: EngineCore): number {
  return (c.kv as ManagedKV).prefix!.blockTokens;
}

/** Every page back once the cache lets go: nothing stored, and the whole pool free. */
function assertAllPagesBack(c: EngineCore): void {
  (c.kv as ManagedKV).clearPrefixCache();
  const s = c.kv.stats();
  assert.equal(s.storedTokens, 0);
  assert.equal(c.kv.freePages(), s.totalPages);
  assert.equal(c.stats().prefixCache?.entries ?? 0, 0);
  const m = (c.kv as ManagedKV).manager;
  if (m instanceof VirtualKVManager) {
    // What references are left belong to idle slots' private pages (deferred reclamation), once each.
    const idlePages = m.stats().slots.reduce((n, slot) => n + (slot.state === 'idle' ? slot.pages : 0), 0);
    assert.equal(m.native.refCounts().reduce((n, r) => n + r, 0), idlePages);
  }
}

function run(c: EngineCore, prompts: number[][], maxTokens: number, params: { cacheSalt?: string } = {}, firstId = 0): Map<number, Outcome> {
  prompts.forEach((p, i) => c.submit(firstId + i, p, { temperature: 0, maxTokens, ...params }));
  return drain(c);
}

const expected = new Map<string, number[]>();
function alone(prompt: number[], maxTokens: number): number[] {
  const key = `${maxTokens}:${prompt.join(',')}`;
  let tokens = expected.get(key);
  if (!tokens) expected.set(key, (tokens = aloneTokens(prompt, { temperature: 0, maxTokens })));
  return tokens;
}

for (const kvManager of KV_MANAGERS) {
  const skip = kvManager === 'virtual' ? virtualUnavailable() : undefined;
  for (const scheduler of SCHEDULERS) {
    test(`${kvManager} KV, ${scheduler}: prefixes cached in an earlier batch give the same greedy tokens`, { skip }, () => {
      const c = core({ kvManager, scheduler });
      const bt = blockTokens(c);
      const first = run(c, sharing.slice(0, 2), 12);
      // A second batch, in another order and beside other work: its prefixes come from the first batch.
      const second = run(c, [sharing[2]!, sharing[1]!, sharing[3]!, sharing[0]!], 12, {}, 10);
      for (const [id, prompt] of [[0, sharing[0]], [1, sharing[1]], [10, sharing[2]], [11, sharing[1]], [12, sharing[3]], [13, sharing[0]]] as const) {
        const out = (id < 10 ? first : second).get(id)!;
        assert.deepEqual(out.tokens, alone(prompt!, 12), `request ${id}`);
        const cached = out.last!.usage!.prompt_tokens_details.cached_tokens;
        assert.equal(cached % bt, 0, 'whole blocks');
        assert.ok(cached <= prompt!.length - 1, 'the last prompt token is always computed');
      }
      assert.equal(first.get(0)!.last!.usage!.prompt_tokens_details.cached_tokens, 0, 'nothing cached before the first request');
      assert.equal(second.get(13)!.last!.usage!.prompt_tokens_details.cached_tokens, Math.floor((sharing[0]!.length - 1) / bt) * bt, 'a repeated prompt hits all its whole blocks');
      assert.ok(second.get(10)!.last!.usage!.prompt_tokens_details.cached_tokens >= bt, 'a prompt sharing 200 characters hits');
      assert.equal(second.get(12)!.last!.usage!.prompt_tokens_details.cached_tokens, 0, 'an unrelated prompt does not');
      const stats = c.stats().prefixCache!;
      assert.ok(stats.hitTokens > 0 && stats.hitRate > 0 && stats.entries > 0);
      assertAllPagesBack(c);
      c.close();
    });
  }

  test(`${kvManager} KV: the second turn of a chat hits the first turn's prompt and answer`, { skip }, () => {
    const c = core({ kvManager });
    const bt = blockTokens(c);
    const turn1 = encode(story.slice(0, 120));
    const answer = run(c, [turn1], 40).get(0)!.tokens;
    const turn2 = [...turn1, ...answer, ...tinyModel().tokenizer.encode(' Then they went home.')];
    const out = run(c, [turn2], 8, {}, 1).get(1)!;
    assert.deepEqual(out.tokens, alone(turn2, 8));
    // The first turn computed its prompt and every answer token but the last (never run through the model).
    assert.equal(out.last!.usage!.prompt_tokens_details.cached_tokens, Math.floor((turn1.length + answer.length - 1) / bt) * bt);
    c.close();
  });

  test(`${kvManager} KV: requests with different cache salts never share blocks`, { skip }, () => {
    const c = core({ kvManager });
    const prompt = sharing[0]!;
    const cachedOf = (o: Map<number, Outcome>, id: number) => o.get(id)!.last!.usage!.prompt_tokens_details.cached_tokens;
    assert.equal(cachedOf(run(c, [prompt], 4, { cacheSalt: 'tenant-a' }), 0), 0);
    assert.equal(cachedOf(run(c, [prompt], 4, { cacheSalt: 'tenant-b' }, 1), 1), 0, 'another tenant');
    assert.equal(cachedOf(run(c, [prompt], 4, {}, 2), 2), 0, 'no salt is a tenant of its own');
    assert.ok(cachedOf(run(c, [prompt], 4, { cacheSalt: 'tenant-a' }, 3), 3) > 0, 'the same tenant hits');
    c.close();
  });
}

test('requests arriving together compute their shared prefix once', () => {
  const c = core({ kvManager: 'paged' });
  const prompts = [sharing[0]!, sharing[0]!, sharing[1]!, sharing[0]!];
  const out = run(c, prompts, 6);
  prompts.forEach((p, id) => assert.deepEqual(out.get(id)!.tokens, alone(p, 6), `request ${id}`));
  const cached = prompts.map((_, id) => out.get(id)!.last!.usage!.prompt_tokens_details.cached_tokens);
  assert.equal(cached[0], 0, 'the first computes the prefix');
  for (const id of [1, 2, 3]) assert.ok(cached[id]! > 0, `request ${id} waited for the shared blocks instead of computing them`);
  // Tokens run through the model: the prefix once, each request's tail, and the generated tokens.
  const generated = prompts.length * 6;
  const prefill = prompts.reduce((n, p, id) => n + p.length - cached[id]!, 0);
  assert.equal(c.stats().step.totalTokens, prefill + generated - prompts.length);
  c.close();
});

test('aborting the request that computes a shared prefix leaves the others to compute it themselves', () => {
  for (const kvManager of KV_MANAGERS) {
    if (kvManager === 'virtual' && virtualUnavailable()) continue;
    const c = core({ kvManager, maxBatchTokens: 16 });
    const prompt = sharing[1]!;
    [0, 1, 2].forEach((id) => c.submit(id, prompt, { temperature: 0, maxTokens: 6 }));
    const out = new Map<number, Outcome>();
    record(c.step(), out);
    assert.equal(c.scheduler.running.length, 1, 'only the first computes; the others wait for its blocks');
    record(c.abort(0), out);
    drain(c, out);
    assert.equal(out.get(0)!.last!.finish_reason, 'abort');
    for (const id of [1, 2]) assert.deepEqual(out.get(id)!.tokens, alone(prompt, 6), `${kvManager}: request ${id}`);
    assertAllPagesBack(c);
    c.close();
  }
});

test('with the cache off nothing is cached or reported', () => {
  const c = core({ kvManager: 'paged', prefixCache: false });
  const out = run(c, [sharing[0]!, sharing[0]!], 4);
  for (const id of [0, 1]) assert.equal(out.get(id)!.last!.usage!.prompt_tokens_details.cached_tokens, 0);
  assert.equal(c.stats().prefixCache, undefined);
  c.close();
});

test('native backend: the bundled model continues with its known greedy text from a cached prefix', { skip: virtualUnavailable() }, () => {
  const native = loadModel(bundledModel, { backend: 'native', threads: 1 });
  const c = core({ kvManager: 'virtual' }, native);
  const prompt = native.tokenizer.encode('Once upon a time', { addSpecial: true });
  const long = native.tokenizer.encode(story.slice(0, 180), { addSpecial: true });
  const decode = (o: Outcome) => o.text;
  const first = run(c, [prompt, long], 40);
  const second = run(c, [long, prompt], 40, {}, 2);
  assert.equal(decode(first.get(0)!), STORIES_GREEDY.slice(0, decode(first.get(0)!).length));
  assert.ok(second.get(2)!.last!.usage!.prompt_tokens_details.cached_tokens > 0);
  assert.deepEqual(second.get(2)!.tokens, first.get(1)!.tokens, 'the cached prefix changes nothing');
  assert.deepEqual(second.get(3)!.tokens, first.get(0)!.tokens);
  c.close();
  native.model.close();
});

for (const kvManager of KV_MANAGERS) {
  test(`${kvManager} KV: n choices share one computed prompt and sample on their own streams`, { skip: kvManager === 'virtual' ? virtualUnavailable() : undefined }, () => {
    const c = core({ kvManager, prefixCache: false });
    const prompt = sharing[1]!;
    const greedy = run(c, [prompt], 8);
    // Greedy: every choice is the alone output.
    c.submit(1, prompt, { temperature: 0, maxTokens: 8, n: 3 });
    const byChoice = new Map<number, { tokens: number[]; finals: number }>();
    const prefillBefore = c.stats().step.totalTokens;
    while (c.hasWork) {
      for (const e of c.step()) {
        assert.equal(e.error, undefined);
        const choice = byChoice.get(e.delta!.index ?? 0) ?? { tokens: [], finals: 0 };
        choice.tokens.push(...e.delta!.tokens);
        if (e.delta!.finish_reason) choice.finals++;
        byChoice.set(e.delta!.index ?? 0, choice);
      }
    }
    assert.deepEqual([...byChoice.keys()].sort(), [0, 1, 2]);
    for (const [, choice] of byChoice) {
      assert.deepEqual(choice.tokens, greedy.get(0)!.tokens);
      assert.equal(choice.finals, 1);
    }
    // The prompt ran through the model once (without the prefix cache), then 7 decode tokens per choice.
    assert.equal(c.stats().step.totalTokens - prefillBefore, prompt.length + 3 * 7);
    // Seeded sampling: choice i uses seed + i, so choice 1 of seed 5 is choice 0 of seed 6.
    const sampled = (seed: number, n: number) => {
      c.submit(100 + seed * 10 + n, prompt, { temperature: 0.9, maxTokens: 10, seed, n });
      const out = new Map<number, number[]>();
      while (c.hasWork) for (const e of c.step()) out.set(e.delta!.index ?? 0, [...(out.get(e.delta!.index ?? 0) ?? []), ...e.delta!.tokens]);
      return out;
    };
    const two = sampled(5, 2);
    assert.deepEqual(two.get(1), sampled(6, 1).get(0));
    assert.notDeepEqual(two.get(0), two.get(1), 'the choices differ');
    assertAllPagesBack(c);
    c.close();
  });
}

test('aborting an n > 1 request ends every choice, forked or not', () => {
  const c = core({ kvManager: 'paged', maxBatchTokens: 16 });
  c.submit(1, sharing[0]!, { temperature: 0, maxTokens: 30, n: 4 });
  c.step();
  const early = c.abort(1);
  assert.deepEqual(early.map((e) => e.delta!.index ?? 0).sort(), [0, 1, 2, 3]);
  assert.ok(early.every((e) => e.delta!.finish_reason === 'abort'));
  c.submit(2, sharing[0]!, { temperature: 0, maxTokens: 30, n: 4 });
  while (c.stats().requests.length < 4) c.step();
  const late = c.abort(2);
  assert.equal(late.length, 4);
  assert.equal(c.hasWork, false);
  assertAllPagesBack(c);
  c.close();
});

test('prefix-aware admission: the longest cached prefix goes first, FCFS once the head has waited its bound', () => {
  const firstAdmitted = (opts: EngineOptions) => {
    const c = core({ kvManager: 'paged', maxSeqs: 1, ...opts });
    run(c, [sharing[0]!], 2);
    c.submit(1, sharing[3]!, { temperature: 0, maxTokens: 2 });
    c.submit(2, sharing[0]!, { temperature: 0, maxTokens: 2 });
    c.step();
    const id = c.scheduler.running[0]!.id;
    drain(c);
    c.close();
    return id;
  };
  assert.equal(firstAdmitted({}), 2, 'the cached request overtakes');
  assert.equal(firstAdmitted({ admissionOrder: 'fcfs' }), 1, 'plain FCFS');
  assert.equal(firstAdmitted({ maxAdmissionDelayMs: 0 }), 1, 'a head past its bound goes first');
});
