// Memory pressure and aborts: a pool too small for every request at once still completes them all, with
// the same tokens, by preempting and recomputing; an abort mid-prefill or mid-decode frees every page.
import assert from 'node:assert/strict';
import { test } from 'node:test';
import type { EngineCore } from '../../src/engine/engine-core.js';
import { createEngineCore } from '../../src/engine/engine-setup.js';
import { kvBytesPerToken } from '../../src/engine/managed-kv.js';
import { ArrayKV } from '../../src/backend/array-kv.js';
import { STORIES_GREEDY } from '../paths.js';
import { aloneTokens, drain, KV_MANAGERS, mixedRequests, record, SCHEDULERS, tinyModel, virtualUnavailable, type Outcome } from './engine-helpers.js';

const MAX_CONTEXT = 128;

/** Every page back: no slot holds tokens, and the whole pool can be handed out again. */
function assertPoolAtRest(core: EngineCore): void {
  const s = core.kv.stats();
  assert.equal(s.activeSlots, 0, 'active slots');
  assert.equal(s.storedTokens, 0, 'stored tokens');
  assert.equal(core.kv.freePages(), s.totalPages, 'available pages');
}

function tinyCore(kvManager: (typeof KV_MANAGERS)[number], scheduler: (typeof SCHEDULERS)[number], kvTokens?: number, prefixCache = true) {
  const { model, tokenizer } = tinyModel();
  const c = model.config;
  // f32 rows: 32 tokens to a 4 KiB page, fine enough for the shared starts of these short prompts to be
  // whole blocks in a 128-token context (f16 rows would make a page, and so a block, 64 tokens).
  const kvType = { k: 'f32', v: 'f32' } as const;
  const perToken = kvBytesPerToken({ nLayers: c.nLayers, kvHeads: c.nKVHeads, headDim: c.headDim, maxSlots: 1, maxContext: MAX_CONTEXT, kvType });
  return createEngineCore(model, tokenizer, {
    scheduler, kvManager, maxSeqs: 16, maxBatchTokens: 32, maxContext: MAX_CONTEXT, pageSize: 4096, blockSize: 16, kvType,
    kvMemory: kvTokens === undefined ? undefined : kvTokens * perToken, prefixCache,
  });
}

const requests = mixedRequests(16);
const expected = requests.map((r) => aloneTokens(r.prompt, { temperature: 0, maxTokens: r.maxTokens }));

for (const kvManager of KV_MANAGERS) {
  const skip = kvManager === 'virtual' ? virtualUnavailable() : undefined;
  for (const scheduler of SCHEDULERS) for (const prefixCache of [false, true]) {
    // Cached prefixes need fewer pages, so the cache runs with a smaller pool to be preempted as often.
    const contexts = prefixCache ? 1.5 : 2.5;
    test(`${kvManager} KV, ${scheduler}, prefix cache ${prefixCache ? 'on' : 'off'}: a pool for ~${contexts} contexts completes 16 requests with unchanged tokens`, { skip }, () => {
      const core = tinyCore(kvManager, scheduler, Math.round(MAX_CONTEXT * contexts), prefixCache);
      requests.forEach((r, id) => core.submit(id, r.prompt, { temperature: 0, maxTokens: r.maxTokens }));
      const out = drain(core);
      requests.forEach((_, id) => assert.deepEqual(out.get(id)!.tokens, expected[id], `request ${id}`));
      // Static slots are backed for the whole context at admission, so requests queue instead.
      if (kvManager !== 'static' && scheduler !== 'static') assert.ok(core.stats().step.preemptions > 0, 'no preemption happened');
      // The prompts share their start, so the cache must have served some of them.
      if (prefixCache) assert.ok(core.stats().prefixCache!.hitTokens > 0, 'no prefix cache hit');
      assertPoolAtRest(core);
      core.close();
    });
  }

  test(`${kvManager} KV: abort mid-prefill and mid-decode frees every page`, { skip }, () => {
    const core = tinyCore(kvManager, 'sarathi');
    const long = tinyModel().tokenizer.encode(`Once upon a time${STORIES_GREEDY}`, { addSpecial: true });
    assert.ok(long.length > 40, 'longer than one step budget');
    // As much as the context leaves: prompt plus max_tokens past it is refused.
    core.submit(1, long, { temperature: 0, maxTokens: MAX_CONTEXT - long.length });
    core.submit(2, requests[0]!.prompt, { temperature: 0, maxTokens: 50 });
    const out = new Map<number, Outcome>();
    record(core.step(), out);
    const prefilling = core.scheduler.running.find((s) => s.id === 1)!;
    assert.ok(prefilling.computed > 0 && prefilling.pending > 1, 'request 1 is mid-prefill');
    record(core.abort(1), out);
    assert.equal(out.get(1)!.last?.finish_reason, 'abort');
    while (!out.get(2)?.tokens.length) record(core.step(), out);
    record(core.abort(2), out);
    assert.equal(out.get(2)!.last?.finish_reason, 'abort');
    assert.equal(core.hasWork, false);
    assertPoolAtRest(core);
    assert.deepEqual(core.abort(2), [], 'aborting a finished request does nothing');
    core.close();
  });
}

test('a queued request aborted before admission never takes a slot', () => {
  const core = tinyCore('paged', 'static');
  core.submit(1, requests[3]!.prompt, { temperature: 0, maxTokens: 5 });
  core.step();
  core.submit(2, requests[4]!.prompt, { temperature: 0, maxTokens: 5 });
  const events = core.abort(2);
  assert.equal(events[0]?.delta?.finish_reason, 'abort');
  assert.equal(events[0]?.delta?.usage?.completion_tokens, 0);
  drain(core);
  assertPoolAtRest(core);
});

test('requests that cannot run fail alone, with a clear error, before taking memory', () => {
  const core = tinyCore('paged', 'sarathi');
  const tooLong = Array.from({ length: MAX_CONTEXT }, () => 1);
  assert.match(core.submit(1, tooLong, {})[0]!.error!.message, /128 tokens; the context holds 128/);
  assert.equal(core.submit(2, 'Hi', { temperature: -1 })[0]!.error!.name, 'SamplingError');
  assert.match(core.submit(3, [1, 99999], {})[0]!.error!.message, /outside the vocabulary/);
  assert.match(core.submit(4, [{ role: 'user', content: 'hi' }], {})[0]!.error!.message, /chat template/);
  assert.equal(core.hasWork, false);
  assertPoolAtRest(core);
});

// Quantized pages under the same pressure: preempted sequences are recomputed into q8_0 / KIVI pages, and
// each request gives the tokens it gives alone with the same cache format (generate() over an ArrayKV of
// that format, its prompt in one chunk): what a token reads does not depend on chunking or batching.
for (const [label, kvType, kvResidual] of [['q8_0', { k: 'q8_0', v: 'q8_0' } as const, undefined], ['kivi4', { k: 'kivi4c', v: 'kivi4t' } as const, 32]] as const) {
  for (const kvManager of ['virtual', 'paged'] as const) {
    test(`${kvManager} KV with a ${label} cache: a pool for ~2.5 contexts completes 16 requests under memory pressure`, { skip: kvManager === 'virtual' ? virtualUnavailable() : undefined }, () => {
      const { model, tokenizer } = tinyModel();
      const c = model.config;
      const perToken = kvBytesPerToken({ nLayers: c.nLayers, kvHeads: c.nKVHeads, headDim: c.headDim, maxSlots: 1, maxContext: MAX_CONTEXT, kvType });
      const core = createEngineCore(model, tokenizer, {
        scheduler: 'sarathi', kvManager, maxSeqs: 16, maxBatchTokens: 32, maxContext: MAX_CONTEXT, pageSize: 4096, blockSize: 32, kvType, kvResidual,
        kvMemory: Math.round(MAX_CONTEXT * 2.5 * perToken), prefixCache: false,
      });
      requests.forEach((r, id) => core.submit(id, r.prompt, { temperature: 0, maxTokens: r.maxTokens }));
      const out = drain(core);
      requests.forEach((r, id) => {
        const kv = new ArrayKV(c.nLayers, 1, MAX_CONTEXT, c.nKVHeads, c.headDim, kvType, kvResidual);
        assert.deepEqual(out.get(id)!.tokens, aloneTokens(r.prompt, { temperature: 0, maxTokens: r.maxTokens }, kv), `request ${id}`);
      });
      // The virtual manager's 4 KiB pages hold 120 q8_0 rows (320 KIVI rows) of this model, more than any of
      // these requests grows to: there the pool limits admission instead of forcing preemption.
      if (kvManager === 'paged') assert.ok(core.stats().step.preemptions > 0, 'no preemption happened');
      assertPoolAtRest(core);
      core.close();
    });
  }
}
