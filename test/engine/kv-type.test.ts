// The engine's kvType option: the bundled model's known greedy text with f32 and f16 caches on both
// backends; q8_0 and q4_0 caches give the native backend the reference backend's tokens (same stored
// bytes, exact reads for this model's 8-value heads); bytes per token and pool capacity follow the
// formats; bad names are errors that list the choices.
import assert from 'node:assert/strict';
import { test } from 'node:test';
import type { KVType } from '../../src/kv/format.js';
import { createEngineCore } from '../../src/engine/engine-setup.js';
import type { EngineOptions } from '../../src/engine/engine-types.js';
import { loadModel, type LoadedModel } from '../../src/model/load.js';
import { bundledModel, STORIES_GREEDY } from '../paths.js';
import { drain, virtualUnavailable } from './engine-helpers.js';

const models = new Map<string, LoadedModel>();
function model(backend: 'native' | 'reference'): LoadedModel {
  let m = models.get(backend);
  if (!m) models.set(backend, (m = loadModel(bundledModel, { backend })));
  return m;
}

function greedy(backend: 'native' | 'reference', opts: EngineOptions, maxTokens: number): { text: string; tokens: number[] } {
  const { model: mdl, tokenizer } = model(backend);
  const core = createEngineCore(mdl, tokenizer, { maxSeqs: 2, maxContext: 256, maxBatchTokens: 64, ...opts });
  try {
    core.submit(0, tokenizer.encode('Once upon a time', { addSpecial: true }), { temperature: 0, maxTokens });
    const out = drain(core).get(0)!;
    return { text: out.text, tokens: out.tokens };
  } finally {
    core.close();
  }
}

const skip = virtualUnavailable();

for (const [type, kvRotate] of [['f32', false], ['f16', false], ['f16', true]] as const) {
  for (const backend of ['native', 'reference'] as const) {
    test(`${type}${kvRotate ? ' rotated' : ''} cache, ${backend} backend: the known greedy text`, { skip }, () => {
      const { text } = greedy(backend, { kvType: type, kvRotate }, 60);
      assert.ok(STORIES_GREEDY.startsWith(text), JSON.stringify(text));
      assert.ok(text.length > 100);
    });
  }
}

for (const kvType of [{ k: 'q8_0', v: 'q8_0' }, { k: 'q4_0', v: 'q4_0' }, { k: 'q8_0', v: 'q4_0' }, 'kivi2', 'kivi4'] satisfies EngineOptions['kvType'][]) {
  for (const kvManager of ['virtual', 'paged', 'static'] as const) {
    const label = typeof kvType === 'string' ? kvType : `${kvType.k}/${kvType.v}`;
    test(`${label} cache, ${kvManager} manager: native generates the reference backend's tokens`, { skip: kvManager === 'virtual' ? skip : undefined }, () => {
      // No residual, so that these 65-token sequences encode two groups of 32.
      const opts: EngineOptions = { kvType, kvManager, ...(typeof kvType === 'string' ? { kvResidual: 0 } : {}) };
      const want = greedy('reference', opts, 60);
      const got = greedy('native', opts, 60);
      assert.deepEqual(got.tokens, want.tokens);
      assert.equal(got.tokens.length, 60);
    });
  }
}

test('kivi2 with the prefix cache: only blocks that left the residual window are shared', () => {
  const { model: mdl, tokenizer } = model('native');
  const core = createEngineCore(mdl, tokenizer, { kvType: 'kivi2', kvResidual: 32, kvManager: 'paged', maxSeqs: 2, maxContext: 256, maxBatchTokens: 64 });
  try {
    const prompt = tokenizer.encode(`Once upon a time${STORIES_GREEDY}`, { addSpecial: true });
    const run = (id: number) => {
      core.submit(id, prompt, { temperature: 0, maxTokens: 8 });
      return drain(core).get(id)!;
    };
    const first = run(0), second = run(1);
    assert.equal(first.last!.usage!.prompt_tokens_details.cached_tokens, 0);
    const cached = second.last!.usage!.prompt_tokens_details.cached_tokens;
    // The first request encoded every whole group more than 32 tokens behind its end (prompt + 8 generated).
    assert.equal(cached, Math.floor((prompt.length + 7 - 32) / 32) * 32);
    assert.equal(second.tokens.length, 8);
  } finally {
    core.close();
  }
});

test('stats report the formats and bytes per token, and a fixed pool holds tokens in proportion', { skip }, () => {
  const { model: mdl, tokenizer } = model('native');
  const budget = 1 << 20;
  const capacity = new Map<string, number>();
  for (const type of ['f32', 'f16', 'q8_0', 'q4_0'] as const) {
    const core = createEngineCore(mdl, tokenizer, { kvType: type, kvMemory: budget, maxSeqs: 4, maxContext: 256, pageSize: 4096 });
    const kv = core.kv.stats();
    assert.deepEqual(kv.kvType, { k: type, v: type });
    // 5 layers x K and V x a row of 4 heads x 8 values: 4, 2, 34/32 or 18/32 bytes a value.
    const rowBytes = { f32: 128, f16: 64, q8_0: 34, q4_0: 18 }[type];
    assert.equal(kv.bytesPerToken, mdl.config.nLayers * 2 * rowBytes);
    capacity.set(type, kv.totalPages * Math.floor(kv.pageBytes / rowBytes));
    core.close();
  }
  assert.ok(capacity.get('f16')! >= 1.98 * capacity.get('f32')!);
  assert.ok(capacity.get('q8_0')! >= 3.6 * capacity.get('f32')!);
  assert.ok(capacity.get('q4_0')! >= 6.0 * capacity.get('f32')!);
});

test('kvType names are checked: unknown names and keys are errors that list the choices', () => {
  const { model: mdl, tokenizer } = model('reference');
  const load = (kvType: unknown) => createEngineCore(mdl, tokenizer, { kvType: kvType as EngineOptions['kvType'], kvManager: 'paged' });
  assert.throws(() => load('q5_0'), /kvType must be one of f32, f16, q8_0, q4_0, kivi2c, kivi4c, kivi2t, kivi4t, kivi2, kivi4, got "q5_0"/);
  assert.throws(() => createEngineCore(mdl, tokenizer, { kvType: 'kivi2', kvResidual: 40, kvManager: 'paged' }), /multiple of 32/);
  const kivi = load('kivi4');
  assert.deepEqual(kivi.kv.stats().kvType, { k: 'kivi4c', v: 'kivi4t' });
  // The rotation is on by default where it lowers the error (q8_0, q4_0), off elsewhere, and can be set.
  assert.equal(kivi.kv.view.rotate, false);
  kivi.close();
  for (const [kvType, kvRotate, rotated] of [['q8_0', undefined, true], [{ k: 'f16', v: 'q4_0' }, undefined, true], ['f16', undefined, false], ['q8_0', false, false], ['f16', true, true]] as const) {
    const c = createEngineCore(mdl, tokenizer, { kvType, kvRotate, kvManager: 'paged' });
    assert.equal(c.kv.view.rotate, rotated, `${JSON.stringify(kvType)}, kvRotate ${kvRotate}`);
    c.close();
  }
  assert.throws(() => load({ k: 'q8_0', value: 'f16' }), /unknown kvType key "value"; known: k, v/);
  assert.throws(() => load({ v: 'int8' }), /kvType.v must be one of/);
  assert.throws(() => load(4), /kvType must be a format name or \{ k, v \}/);
  const mixed = load({ v: 'q8_0' });
  assert.deepEqual(mixed.kv.stats().kvType, { k: 'f16', v: 'q8_0' });
  mixed.close();
});
