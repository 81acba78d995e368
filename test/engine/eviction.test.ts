// KV eviction in the engine: a compacted cache attends exactly like a cache built of only the kept rows
// (rows apart from RoPE positions, DESIGN.md §8.3); a policy whose budget holds everything changes no
// greedy token; decode-time policies keep a sequence within its budget, past the context; prompt-time
// policies compress once after prefill and give pages back in that step; shared prefix pages are never
// written; bad kv_policy / kv_budget values are the request's error, naming the field.
import assert from 'node:assert/strict';
import { test } from 'node:test';
import type { EngineCore } from '../../src/engine/engine-core.js';
import { createEngineCore } from '../../src/engine/engine-setup.js';
import type { EngineOptions } from '../../src/engine/engine-types.js';
import type { ManagedKV } from '../../src/engine/managed-kv.js';
import { moveList } from '../../src/kv/eviction/index.js';
import { headSliceBytes, kvFormat } from '../../src/kv/format.js';
import { StaticKVManager } from '../../src/kv/index.js';
import { Rng } from '../../src/engine/rng.js';
import { STORIES_GREEDY } from '../paths.js';
import { rowBytesAt } from '../kv/kv-rows.js';
import { aloneTokens, drain, KV_MANAGERS, record, tinyModel, virtualUnavailable, type Outcome } from './engine-helpers.js';

const encode = (text: string) => tinyModel().tokenizer.encode(text, { addSpecial: true });
const story = `Once upon a time${STORIES_GREEDY}`;

function core(opts: EngineOptions): EngineCore {
  const { model, tokenizer } = tinyModel();
  return createEngineCore(model, tokenizer, { maxSeqs: 4, maxBatchTokens: 48, maxContext: 128, pageSize: 4096, blockSize: 16, ...opts });
}

function run(c: EngineCore, prompts: number[][], params: Record<string, unknown>, firstId = 0): Map<number, Outcome> {
  prompts.forEach((p, i) => {
    const events = c.submit(firstId + i, p, { temperature: 0, ...params });
    assert.deepEqual(events.filter((e) => e.error), [], 'submitted');
  });
  return drain(c);
}

for (const type of ['f32', 'f16'] as const) {
  test(`${type} cache: after compaction with per-head keep sets, the next token's logits equal those over a cache of only the kept rows`, () => {
    const { model } = tinyModel();
    const c = model.config;
    const text = encode(story).slice(0, 61);
    const prompt = text.slice(0, 60);
    const shape = { layers: c.nLayers, kvHeads: c.nKVHeads, headDim: c.headDim, maxSlots: 1, maxContext: 96, type: { k: type, v: type } };
    const full = new StaticKVManager(shape), kept = new StaticKVManager(shape);
    const a = full.allocSlot()!, b = kept.allocSlot()!;
    const lens = Int32Array.of(prompt.length);
    full.step(lens);
    const positions = (n: number, from = 0) => Int32Array.from({ length: n }, (_, i) => from + i);
    model.forward({ tokens: Int32Array.from(prompt), positions: positions(prompt.length), slots: new Int32Array(prompt.length), logitRows: new Int32Array(0) }, full.view());

    // Different rows per (layer, head), always 30 of the 60.
    const rng = new Rng(7);
    const sets = Array.from({ length: c.nLayers }, () => Array.from({ length: c.nKVHeads }, () => {
      const picked = new Set<number>();
      while (picked.size < 30) picked.add(Math.floor(rng.next() * 60));
      return Int32Array.from([...picked].sort((x, y) => x - y));
    }));
    // The truth: a fresh cache whose row j of head h is written byte for byte from kept row sets[l][h][j].
    kept.step(Int32Array.of(30));
    const slice = headSliceBytes(kvFormat(type), c.headDim)!;
    for (let l = 0; l < c.nLayers; l++) {
      for (const v of [false, true]) {
        for (let h = 0; h < c.nKVHeads; h++) {
          sets[l]![h]!.forEach((row, j) => {
            const [src, so] = rowBytesAt(full, a, l, row, v), [dst, d] = rowBytesAt(kept, b, l, j, v);
            dst.set(src.subarray(so + h * slice, so + (h + 1) * slice), d + h * slice);
          });
        }
      }
    }
    const next = (kv: StaticKVManager, slot: number) => model.forward({
      tokens: Int32Array.of(text[60]!), positions: Int32Array.of(60), rows: Int32Array.of(30), slots: Int32Array.of(slot), logitRows: Int32Array.of(0),
    }, kv.view());
    const before = model.forward({ tokens: Int32Array.of(text[60]!), positions: Int32Array.of(60), slots: Int32Array.of(a), logitRows: Int32Array.of(0) }, full.view());
    const r = full.compact(a, sets.map((heads) => heads.map((set) => moveList(set, 60))));
    assert.ok(r.ok);
    full.step(Int32Array.of(31));
    kept.step(Int32Array.of(31));
    const got = next(full, a), want = next(kept, b);
    let err = 0, scale = 0, changed = 0;
    for (let i = 0; i < want.length; i++) {
      err = Math.max(err, Math.abs(got[i]! - want[i]!));
      scale = Math.max(scale, Math.abs(want[i]!));
      changed = Math.max(changed, Math.abs(before[i]! - want[i]!));
    }
    assert.ok(err <= 1e-5 * scale, `compacted vs kept-rows cache: error ${err} of ${scale}`);
    assert.ok(changed > 1e-3 * scale, 'evicting half the rows changes the logits');
    full.close();
    kept.close();
  });
}

test('layers keeping different numbers of rows (PyramidKV) attend like caches of only their kept rows', () => {
  const { model } = tinyModel();
  const c = model.config;
  const text = encode(story).slice(0, 61);
  const shape = { layers: c.nLayers, kvHeads: c.nKVHeads, headDim: c.headDim, maxSlots: 1, maxContext: 96, type: { k: 'f32', v: 'f32' } } as const;
  const full = new StaticKVManager(shape), kept = new StaticKVManager(shape);
  full.allocSlot();
  kept.allocSlot();
  full.step(Int32Array.of(60));
  model.forward({ tokens: Int32Array.from(text.slice(0, 60)), positions: Int32Array.from({ length: 60 }, (_, i) => i), slots: new Int32Array(60), logitRows: new Int32Array(0) }, full.view());
  // Layer l keeps 40 - 5l rows, spread over the 60.
  const counts = Array.from({ length: c.nLayers }, (_, l) => 40 - 5 * l);
  const most = counts[0]!;
  const sets = counts.map((n, l) => Int32Array.from({ length: n }, (_, j) => Math.floor((j * 60) / n) + (l % 2)));
  kept.step(Int32Array.of(most));
  const rowBytes = full.view().rowBytes;
  for (let l = 0; l < c.nLayers; l++) {
    for (const v of [false, true]) {
      sets[l]!.forEach((row, j) => {
        const [src, so] = rowBytesAt(full, 0, l, row, v), [dst, d] = rowBytesAt(kept, 0, l, j, v);
        dst.set(src.subarray(so, so + rowBytes), d);
      });
    }
  }
  // The engine's padding: a shorter layer's list leaves its rows past its count where they are.
  const lists = sets.map((set) => {
    const list = moveList(set, 60);
    return Int32Array.from({ length: most }, (_, i) => (i < list.length ? list[i]! : i));
  });
  assert.ok(full.compact(0, lists).ok);
  full.step(Int32Array.of(most + 1));
  kept.step(Int32Array.of(most + 1));
  const next = (kv: StaticKVManager) => model.forward({
    tokens: Int32Array.of(text[60]!), positions: Int32Array.of(60), rows: Int32Array.of(most), slots: Int32Array.of(0), logitRows: Int32Array.of(0),
    layerRows: (l) => Int32Array.of(counts[l]!),
  }, kv.view());
  const got = next(full), want = next(kept);
  const uniform = model.forward({ tokens: Int32Array.of(text[60]!), positions: Int32Array.of(60), rows: Int32Array.of(most), slots: Int32Array.of(0), logitRows: Int32Array.of(0) }, kept.view());
  let err = 0, scale = 0, changed = 0;
  for (let i = 0; i < want.length; i++) {
    err = Math.max(err, Math.abs(got[i]! - want[i]!));
    scale = Math.max(scale, Math.abs(want[i]!));
    changed = Math.max(changed, Math.abs(uniform[i]! - want[i]!));
  }
  assert.ok(err <= 1e-5 * scale, `error ${err} of ${scale}`);
  assert.ok(changed > 1e-3 * scale, 'the per-layer row counts are what the layers attend to');
  full.close();
  kept.close();
});

for (const kvManager of KV_MANAGERS) {
  const skip = kvManager === 'virtual' ? virtualUnavailable() : undefined;

  test(`${kvManager} KV: a policy whose budget holds the whole sequence changes no greedy token`, { skip }, () => {
    const prompt = encode(story.slice(0, 150));
    const want = aloneTokens(prompt, { temperature: 0, maxTokens: 20 });
    for (const kvPolicy of ['sinks', 'h2o', 'tova', 'snapkv', 'chunkkv', 'pyramidkv']) {
      const c = core({ kvManager });
      const out = run(c, [prompt], { maxTokens: 20, kvPolicy, kvBudget: 128 }).get(0)!;
      assert.deepEqual(out.tokens, want, kvPolicy);
      assert.deepEqual(out.last!.usage!.kv_eviction, { policy: kvPolicy, budget: 128, evicted_tokens: 0 });
      c.close();
    }
  });

  test(`${kvManager} KV: sinks keeps a sequence within its budget while its prompt and output pass the context`, { skip }, () => {
    const c = core({ kvManager });
    const prompt = encode(story + story).slice(0, 200);
    assert.ok(prompt.length > 128);
    for (const e of c.submit(0, prompt, { temperature: 0, maxTokens: 150, kvPolicy: 'sinks', kvBudget: 64 })) assert.fail(e.error?.message);
    const outcomes = new Map<number, Outcome>();
    let most = 0;
    while (c.hasWork) {
      record(c.step(), outcomes);
      const m = (c.kv as ManagedKV).manager;
      for (const seq of [...(c as unknown as { scheduler: { running: { slot: number }[] } }).scheduler.running]) most = Math.max(most, m.tokens(seq.slot));
    }
    const out = outcomes.get(0)!;
    assert.equal(out.error, undefined);
    assert.equal(out.tokens.length, 150);
    assert.ok(most <= 64, `the slot held ${most} rows`);
    const evicted = out.last!.usage!.kv_eviction!.evicted_tokens;
    // Every token but the last generated one went through the model; at most 64 of them are still held.
    assert.ok(evicted >= 200 + 149 - 64 && evicted < 200 + 149, `evicted ${evicted}`);
    c.close();
  });

  test(`${kvManager} KV: snapkv compresses the prompt to its budget once, and the pages go back in that step`, { skip }, () => {
    // Without the prefix cache, which would keep the prompt's blocks (see the next test).
    const c = core({ kvManager, maxBatchTokens: 128, prefixCache: false });
    const prompt = encode(story).slice(0, 100);
    for (const e of c.submit(0, prompt, { temperature: 0, maxTokens: 10, kvPolicy: 'snapkv', kvBudget: 0.25 })) assert.fail(e.error?.message);
    const m = (c.kv as ManagedKV).manager;
    const before = m.availablePages();
    const outcomes = new Map<number, Outcome>();
    record(c.step(), outcomes);
    assert.equal(outcomes.get(0)?.error, undefined);
    const slot = (c as unknown as { scheduler: { running: { slot: number }[] } }).scheduler.running[0]!.slot;
    assert.equal(m.tokens(slot), 25, 'a quarter of the prompt is kept');
    if (kvManager === 'static') assert.equal(m.availablePages(), before - m.pagesForTokens(prompt.length), 'static frees nothing');
    else assert.equal(m.availablePages(), before - m.pagesForTokens(25), 'only the kept rows hold pages');
    const out = drain(c, outcomes).get(0)!;
    assert.equal(out.tokens.length, 10);
    assert.equal(out.last!.usage!.kv_eviction!.evicted_tokens, 75);
    c.close();
  });

  test(`${kvManager} KV: evicting inside a cached prefix leaves the shared pages as they were`, { skip }, () => {
    const c = core({ kvManager, maxBatchTokens: 48 });
    const prompt = encode(story).slice(0, 100);
    const want = aloneTokens(prompt, { temperature: 0, maxTokens: 12 });
    // The first request publishes its prompt's blocks as it computes them, then compresses its own copy.
    run(c, [prompt], { maxTokens: 4, kvPolicy: 'snapkv', kvBudget: 32 });
    // A second one beside a third that evicts from the same cached prefix while it runs.
    const both = run(c, [prompt, prompt], { maxTokens: 12 }, 1);
    assert.deepEqual(both.get(1)!.tokens, want);
    assert.ok(both.get(1)!.last!.usage!.prompt_tokens_details.cached_tokens > 0, 'the prefix came from the cache');
    const mixed = new Map<number, Outcome>();
    record(c.submit(3, prompt, { temperature: 0, maxTokens: 12 }), mixed);
    record(c.submit(4, prompt, { temperature: 0, maxTokens: 20, kvPolicy: 'chunkkv', kvBudget: 40 }), mixed);
    drain(c, mixed);
    assert.deepEqual([mixed.get(3)?.error, mixed.get(4)?.error], [undefined, undefined]);
    assert.deepEqual(mixed.get(3)!.tokens, want, 'a sequence sharing pages with an evicting one');
    assert.ok(mixed.get(4)!.last!.usage!.prompt_tokens_details.cached_tokens > 0, 'the evicting one attached the cached prefix');
    assert.ok(mixed.get(4)!.last!.usage!.kv_eviction!.evicted_tokens > 0);
    // And the cache still serves it whole.
    assert.deepEqual(run(c, [prompt], { maxTokens: 12 }, 5).get(5)!.tokens, want);
    // A sequence that evicts as it grows starts from no cached page: its first eviction would copy them all.
    const streaming = run(c, [prompt], { maxTokens: 12, kvPolicy: 'sinks', kvBudget: 48 }, 6).get(6)!;
    assert.equal(streaming.last!.usage!.prompt_tokens_details.cached_tokens, 0);
    c.close();
  });
}

for (const kvManager of KV_MANAGERS) {
  test(`${kvManager} KV: pyramidkv compresses a prompt with fewer rows in higher layers, and keeps generating from it`, { skip: kvManager === 'virtual' ? virtualUnavailable() : undefined }, () => {
    const c = core({ kvManager, maxBatchTokens: 128, prefixCache: false });
    const prompt = encode(story).slice(0, 100);
    const outcomes = new Map<number, Outcome>();
    record(c.submit(0, prompt, { temperature: 0, maxTokens: 12, kvPolicy: 'pyramidkv', kvBudget: 30 }), outcomes);
    record(c.step(), outcomes);
    const m = (c.kv as ManagedKV).manager;
    const slot = (c as unknown as { scheduler: { running: { slot: number }[] } }).scheduler.running[0]!.slot;
    const held = m.tokens(slot);
    assert.ok(held > 30 && held < 100, `the slot holds the lowest layer's ${held} rows`);
    const out = drain(c, outcomes).get(0)!;
    assert.equal(out.error, undefined);
    assert.equal(out.tokens.length, 12);
    assert.equal(out.last!.usage!.kv_eviction!.evicted_tokens, 70, 'on average the budget is kept');
    c.close();
  });
}

test('a slot a pyramidkv sequence used serves the next sequence with every layer whole', () => {
  const c = core({ kvManager: 'paged', maxSeqs: 2, maxBatchTokens: 128, prefixCache: false });
  const prompt = encode(story).slice(0, 100);
  const want = aloneTokens(prompt, { temperature: 0, maxTokens: 12 });
  run(c, [prompt], { maxTokens: 4, kvPolicy: 'pyramidkv', kvBudget: 30 });
  // The plain request gets the slot the first one left; beside it another pyramidkv sequence compresses.
  const outcomes = new Map<number, Outcome>();
  record(c.submit(1, prompt, { temperature: 0, maxTokens: 12 }), outcomes);
  record(c.submit(2, prompt, { temperature: 0, maxTokens: 12, kvPolicy: 'pyramidkv', kvBudget: 30 }), outcomes);
  drain(c, outcomes);
  assert.deepEqual(outcomes.get(1)!.tokens, want);
  assert.equal(outcomes.get(2)!.tokens.length, 12);
  c.close();
});

test('n choices fork from the compressed prompt', () => {
  const c = core({ kvManager: 'paged' });
  const out = run(c, [encode(story).slice(0, 90)], { maxTokens: 8, n: 2, kvPolicy: 'snapkv', kvBudget: 40 });
  assert.equal(out.get(0)!.error, undefined);
  c.close();
});

test('a prompt longer than the context is refused without a bounding policy, and taken with one', () => {
  const c = core({ kvManager: 'paged' });
  const prompt = encode(story + story).slice(0, 140);
  const [refused] = c.submit(0, prompt, { temperature: 0, maxTokens: 4 });
  assert.equal(refused?.error?.name, 'ContextLengthError');
  const [alsoRefused] = c.submit(1, prompt, { temperature: 0, maxTokens: 4, kvPolicy: 'snapkv' });
  assert.equal(alsoRefused?.error?.name, 'ContextLengthError', 'prompt-time policies do not bound the prompt');
  assert.deepEqual(c.submit(2, prompt, { temperature: 0, maxTokens: 4, kvPolicy: 'tova', kvBudget: 0.5 }), []);
  assert.equal(drain(c).get(2)!.tokens.length, 4);
  c.close();
});

test('bad kv_policy and kv_budget values are the request\'s error, naming the field', () => {
  const c = core({ kvManager: 'paged' });
  const prompt = encode('Once upon a time');
  const cases: [Record<string, unknown>, RegExp, string][] = [
    [{ kvPolicy: 'lru' }, /kv_policy must be one of none, sinks, h2o, tova, snapkv, chunkkv, pyramidkv; got "lru"/, 'kv_policy'],
    [{ kvPolicy: 'sinks', kvBudget: 0 }, /kv_budget must be a whole number of tokens \(at least 16\)/, 'kv_budget'],
    [{ kvPolicy: 'sinks', kvBudget: 8 }, /kv_budget/, 'kv_budget'],
    [{ kvPolicy: 'sinks', kvBudget: 20.5 }, /kv_budget/, 'kv_budget'],
  ];
  cases.forEach(([params, message, param], i) => {
    const [e] = c.submit(i, prompt, params);
    assert.match(e?.error?.message ?? '', message);
    assert.equal(e?.error?.param, param);
    assert.equal(e?.error?.kind, 'request');
  });
  c.close();
});

test('a KIVI cache cannot evict: a request naming a policy is refused, and so is an engine default', () => {
  const c = core({ kvManager: 'paged', blockSize: 32, kvType: 'kivi2', kvResidual: 32 });
  const [e] = c.submit(0, encode('Once upon a time'), { kvPolicy: 'sinks' });
  assert.equal(e?.error?.param, 'kv_policy');
  c.close();
  assert.throws(() => core({ kvManager: 'paged', blockSize: 32, kvType: 'kivi2', kvResidual: 32, kvPolicy: 'h2o' }), /cannot evict/);
  assert.throws(() => core({ kvManager: 'paged', kvPolicy: 'lru' }), /kvPolicy must be one of/);
});
