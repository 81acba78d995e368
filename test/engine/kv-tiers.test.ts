// The prefix cache's tiers in the engine: blocks computed by one engine are written to a tier and loaded
// by another engine with an empty pool, which then computes only what no tier had. Its greedy tokens equal
// those of a sequence run alone, on every KV manager and in quantized formats; a damaged value, a failing
// tier or a slow one only costs the computing.
import assert from 'node:assert/strict';
import { test } from 'node:test';
import type { EngineCore } from '../../src/engine/engine-core.js';
import { createEngineCore } from '../../src/engine/engine-setup.js';
import type { EngineOptions } from '../../src/engine/engine-types.js';
import type { ManagedKV } from '../../src/engine/managed-kv.js';
import type { KVFormatName } from '../../src/kv/format.js';
import { KVTierStore } from '../../src/kv/tiers/tiered-store.js';
import { STORIES_GREEDY } from '../paths.js';
import { MemoryTier } from '../kv/tiers/memory-tier.js';
import { aloneTokens, KV_MANAGERS, record, tinyModel, virtualUnavailable, type Outcome } from './engine-helpers.js';

const MAX_TOKENS = 12;
// Long enough for several blocks of a 4 KiB page of f16 rows, within the context with the output.
const prompt = tinyModel().tokenizer.encode(`Once upon a time${STORIES_GREEDY}${STORIES_GREEDY}`, { addSpecial: true }).slice(0, 230);
const expected = aloneTokens(prompt, { temperature: 0, maxTokens: MAX_TOKENS });

function tieredCore(tier: MemoryTier, opts: EngineOptions = {}): EngineCore {
  const { model, tokenizer } = tinyModel();
  return createEngineCore(
    model, tokenizer, { maxSeqs: 4, maxBatchTokens: 48, maxContext: 256, pageSize: 4096, blockSize: 16, ...opts }, undefined,
    (fingerprint, blockBytes) => new KVTierStore([tier], { fingerprint, blockBytes }),
  );
}

/** Steps until every request finished, sleeping while the only work waits on tier lookups. */
async function drainWithLoads(core: EngineCore): Promise<Map<number, Outcome>> {
  const outcomes = new Map<number, Outcome>();
  let wake: (() => void) | undefined;
  core.onRunnable = () => wake?.();
  for (let i = 0; core.hasWork; i++) {
    if (i > 100_000) throw new Error('not finished');
    record(core.step(), outcomes);
    if (core.waitingOnLoads) await new Promise<void>((resolve) => (wake = resolve));
  }
  return outcomes;
}

async function writesDone(core: EngineCore): Promise<void> {
  while (core.stats().tiers!.pendingBlocks > 0) await new Promise((r) => setTimeout(r, 1));
}

async function runOnce(core: EngineCore, tokens: number[] = prompt, id = 0): Promise<Outcome & { cached: number }> {
  core.submit(id, tokens, { temperature: 0, maxTokens: MAX_TOKENS });
  const out = (await drainWithLoads(core)).get(id)!;
  assert.equal(out.error, undefined);
  return { ...out, cached: out.last!.usage!.prompt_tokens_details.cached_tokens };
}

const shareableBlocks = (core: EngineCore, tokens = prompt) => Math.floor((tokens.length - 1) / (core.kv as ManagedKV).prefix!.blockTokens);

const FORMATS: { k: KVFormatName; v: KVFormatName }[] = [{ k: 'f16', v: 'f16' }, { k: 'q8_0', v: 'q4_0' }, { k: 'kivi4c', v: 'kivi2t' }];

for (const kvManager of KV_MANAGERS) for (const kvType of FORMATS) {
  // A virtual block is a 4 KiB page: of KIVI rows it holds more tokens than this model's context encodes.
  if (kvManager === 'virtual' && kvType.k.startsWith('kivi')) continue;
  test(`${kvManager} KV, ${kvType.k}/${kvType.v}: a prefix one engine computed loads from the tier into another with the same greedy tokens`, { skip: kvManager === 'virtual' ? virtualUnavailable() : undefined }, async () => {
    const tier = new MemoryTier();
    // KIVI: a short residual window, so that most of the prompt is encoded in blocks (the window's tokens are never published).
    const kivi = kvType.k.startsWith('kivi');
    const opts: EngineOptions = { kvManager, kvType, ...(kivi ? { blockSize: 32, kvResidual: 32 } : {}) };
    const a = tieredCore(tier, opts);
    const first = await runOnce(a);
    // Lossless formats give the tokens of a sequence alone; lossy ones are compared with their own computation.
    if (kvType.k === 'f16') assert.deepEqual(first.tokens, expected);
    await writesDone(a);
    const blocks = Math.min(shareableBlocks(a), tier.values.size);
    // A 4 KiB page of the smaller formats' rows holds the whole prompt: one block.
    assert.ok(blocks >= (kvType.k === 'f16' ? 2 : 1), `${tier.values.size} values written, ${shareableBlocks(a)} blocks shareable`);

    const b = tieredCore(tier, opts);
    const second = await runOnce(b);
    assert.deepEqual(second.tokens, first.tokens, 'greedy tokens after loading');
    const blockTokens = (b.kv as ManagedKV).prefix!.blockTokens;
    assert.equal(second.cached, blocks * blockTokens, 'cached_tokens counts the loaded blocks');
    const s = b.stats().tiers!;
    assert.equal(s.hitBlocks, blocks);
    assert.equal(s.rejected.checksum + s.rejected.foreign + s.rejected.malformed, 0);
    // Loaded blocks went into b's pool: a third request finds them there.
    const third = await runOnce(b, prompt, 1);
    assert.deepEqual(third.tokens, first.tokens);
    assert.equal(third.cached, second.cached);
    assert.equal(b.stats().tiers!.hitBlocks, blocks, 'the pool served them');
    await Promise.all([a.close().closed, b.close().closed]);
  });
}

test('blocks the pool lacks past its own hits come from the tier; the pool keeps serving what it has', async () => {
  const tier = new MemoryTier();
  const a = tieredCore(tier);
  await runOnce(a);
  await writesDone(a);
  const b = tieredCore(tier);
  const head = prompt.slice(0, 40);
  await runOnce(b, head, 0);
  const poolBlocks = shareableBlocks(b, head);
  const before = b.stats().tiers!.hitBlocks;
  const out = await runOnce(b, prompt, 1);
  assert.deepEqual(out.tokens, expected);
  assert.equal(b.stats().tiers!.hitBlocks - before, shareableBlocks(b) - poolBlocks, 'only the blocks after the pool hits were loaded');
  assert.equal(out.cached, shareableBlocks(b) * (b.kv as ManagedKV).prefix!.blockTokens);
});

test('damaged values are counted and never loaded: the blocks are computed, with the same tokens', async () => {
  const tier = new MemoryTier();
  const a = tieredCore(tier);
  await runOnce(a);
  await writesDone(a);
  for (const v of tier.values.values()) v[v.length - 3]! ^= 0x40;
  const b = tieredCore(tier);
  const out = await runOnce(b);
  assert.deepEqual(out.tokens, expected);
  assert.equal(out.cached, 0);
  assert.equal(b.stats().tiers!.rejected.checksum, 1, 'the first damaged block ends the run');
});

test('a failing tier costs only the computing; it is counted', async () => {
  const tier = new MemoryTier();
  const a = tieredCore(tier);
  await runOnce(a);
  await writesDone(a);
  tier.failing = true;
  const b = tieredCore(tier);
  const out = await runOnce(b);
  assert.deepEqual(out.tokens, expected);
  assert.equal(out.cached, 0);
  assert.ok(b.stats().tiers!.failures >= 1);
  await writesDone(b);
  assert.ok(b.stats().tiers!.failures >= 2, 'the write-through failed too, and was counted');
});

test('while one request waits on a slow tier, others run', async () => {
  const tier = new MemoryTier();
  const a = tieredCore(tier);
  await runOnce(a);
  await writesDone(a);
  tier.delayMs = 150;
  const b = tieredCore(tier);
  const other = tinyModel().tokenizer.encode('A cat sat on a mat.', { addSpecial: true });
  b.submit(0, prompt, { temperature: 0, maxTokens: MAX_TOKENS });
  b.submit(1, other, { temperature: 0, maxTokens: 4 });
  const outcomes = new Map<number, Outcome>();
  const started = performance.now();
  // The other request finishes while the lookup is still out.
  while (!outcomes.get(1)?.last?.finish_reason) {
    record(b.step(), outcomes);
    assert.ok(performance.now() - started < 150, 'the other request was held up by the lookup');
  }
  assert.equal(outcomes.get(0)?.tokens.length ?? 0, 0);
  const rest = await drainWithLoads(b);
  assert.deepEqual([...(outcomes.get(0)?.tokens ?? []), ...rest.get(0)!.tokens], expected);
  assert.ok(rest.get(0)!.last!.usage!.prompt_tokens_details.cached_tokens > 0);
});
