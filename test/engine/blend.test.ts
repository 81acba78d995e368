// CacheBlend in the engine: documents computed once by chunk jobs and reused from the chunk store. At a
// recompute share of 1 the output is the full prompt's, whatever order the documents come in; a document
// reused at the very positions it was computed at (delta 0, same context) needs no recompute at all; a
// document placed elsewhere has its keys re-rotated so that its first layer's K/V equal what computing it
// there stores; the share of tokens recomputed is the one asked; and bad requests are refused by field.
import assert from 'node:assert/strict';
import { test } from 'node:test';
import type { EngineCore } from '../../src/engine/engine-core.js';
import type { EngineOptions } from '../../src/engine/engine-types.js';
import { createEngineCore } from '../../src/engine/engine-setup.js';
import type { ManagedKV } from '../../src/engine/managed-kv.js';
import type { RequestParams } from '../../src/engine/completion.js';
import { kvRowOffset } from '../../src/backend/kv-rows.js';
import { aloneTokens, drain, KV_MANAGERS, tinyModel, virtualUnavailable } from './engine-helpers.js';

const MAX_CONTEXT = 320;

function core(opts: EngineOptions = {}): EngineCore {
  const m = tinyModel();
  return createEngineCore(m.model, m.tokenizer, { maxSeqs: 6, maxBatchTokens: 64, maxContext: MAX_CONTEXT, pageSize: 4096, blockSize: 16, ...opts });
}

const piece = (text: string) => tinyModel().tokenizer.encode(text, { addSpecial: false });
const system = tinyModel().tokenizer.encode('Here are some stories.', { addSpecial: true });
const docs = [
  piece(' Once upon a time, there was a little girl named Lily. She loved to play outside in the park with her dog.'),
  piece(' Tom had a big red ball. He liked to throw it high into the sky and catch it again.'),
  piece(' The sun was hot, so the cat slept under a tree all day long.'),
];
const question = piece(' What did Lily love to do? She');

/** The prompt system + documents (in this order) + question, and the documents' token ranges. */
function blended(order: number[]): { prompt: number[]; documents: [number, number][] } {
  const prompt = [...system];
  const documents: [number, number][] = [];
  for (const d of order) {
    documents.push([prompt.length, prompt.length + docs[d]!.length]);
    prompt.push(...docs[d]!);
  }
  prompt.push(...question);
  return { prompt, documents };
}

function run(c: EngineCore, requests: { prompt: number[]; params: RequestParams }[], firstId = 0) {
  requests.forEach((r, i) => c.submit(firstId + i, r.prompt, { temperature: 0, maxTokens: 10, ...r.params }));
  return drain(c);
}

for (const kvManager of KV_MANAGERS) {
  const skip = kvManager === 'virtual' ? virtualUnavailable() : undefined;
  test(`${kvManager} KV: recomputing every document token gives the full prompt's greedy output, in any document order`, { skip }, () => {
    const c = core({ kvManager });
    const orders = [[0, 1, 2], [2, 0, 1], [1, 2, 0]];
    const request = (o: number[]) => ({ prompt: blended(o).prompt, params: { documents: blended(o).documents, blend: { recompute: 1 } } });
    // The first request alone (its documents are computed for it), then the others together.
    const out = new Map([...run(c, [request(orders[0]!)]), ...run(c, orders.slice(1).map(request), 1)]);
    orders.forEach((o, i) => {
      const r = out.get(i)!;
      assert.equal(r.error, undefined);
      assert.deepEqual(r.tokens, aloneTokens(blended(o).prompt, { temperature: 0, maxTokens: 10 }), `order ${o}`);
      const docTokens = docs.reduce((n, d) => n + d.length, 0);
      const cached = r.last!.usage!.prompt_tokens_details.cached_tokens;
      // The first request's documents were computed for it (by chunk jobs); the others found them stored.
      if (i === 0) assert.ok(cached < docs[0]!.length, `documents computed for the request are not cached (${cached})`);
      else assert.ok(cached >= docTokens, 'reused document tokens count as cached');
    });
    const stats = c.stats().blend!;
    assert.equal(stats.chunkJobs, 3, 'each document is computed once');
    assert.equal(stats.documentsReused, 9);
    assert.equal(stats.tokensRecomputed, 3 * docs.reduce((n, d) => n + d.length, 0), 'a share of 1 recomputes every document token');
    // Every pin and scratch slot was given back: clearing the cache frees the whole pool.
    (c.kv as ManagedKV).clearPrefixCache();
    assert.equal(c.kv.freePages(), c.kv.stats().totalPages);
  });
}

test('a document reused where it was computed (same context, same positions) needs no recompute: greedy equals the full prompt', () => {
  const c = core();
  const { prompt, documents } = blended([0]);
  run(c, [{ prompt, params: { documents, blend: { recompute: 0 } } }]);
  const again = run(c, [{ prompt, params: { documents, blend: { recompute: 0 } } }], 10).get(10)!;
  assert.deepEqual(again.tokens, aloneTokens(prompt, { temperature: 0, maxTokens: 10 }));
  assert.equal(c.stats().blend!.tokensRecomputed, 0);
});

test("a document placed after another has its keys re-rotated: its first layer's K/V equal what computing it there stores", () => {
  // With the 'bos' context a document's KV is computed right after the first token; placed after the
  // system prompt and another document it moves by the difference. Layer 0's K and V of a token depend on
  // the token and its position only, so they must match the full prompt's (K up to f16 rounding).
  const c = core({ blendContext: 'bos', maxBatchTokens: 512 });
  const { prompt, documents } = blended([1, 0]);
  run(c, [{ prompt: blended([0]).prompt, params: { documents: blended([0]).documents, blend: true } }]);
  c.submit(1, prompt, { temperature: 0, maxTokens: 40, documents, blend: { recompute: 0 } });
  c.submit(2, prompt, { temperature: 0, maxTokens: 40 });
  const kv = (c.kv as ManagedKV).view;
  const seqs = () => c.scheduler.running.filter((s) => s.id === 1 || s.id === 2);
  for (let i = 0; seqs().length < 2 || seqs().some((s) => s.computed < prompt.length); i++) {
    assert.ok(i < 30, 'both prompts computed within 30 steps');
    c.step();
  }
  const [blendSlot, fullSlot] = [1, 2].map((id) => seqs().find((s) => s.id === id)!.slot);
  const row = kv.kvHeads * kv.headDim;
  const decode = (bytes: Uint8Array, slot: number, pos: number, format = kv.keyFormat) => {
    const out = new Float32Array(row);
    format.decode(bytes, kvRowOffset(kv, slot, pos), 0, row, out, 0, row, 0, kv.rowBytes);
    return out;
  };
  const [start, end] = documents[1]!;
  let worst = 0;
  for (let pos = start; pos < end; pos++) {
    const got = decode(kv.keys(0), blendSlot!, pos), want = decode(kv.keys(0), fullSlot!, pos);
    for (let i = 0; i < row; i++) worst = Math.max(worst, Math.abs(got[i]! - want[i]!) / Math.max(1, Math.abs(want[i]!)));
    assert.deepEqual(decode(kv.values(0), blendSlot!, pos, kv.valueFormat), decode(kv.values(0), fullSlot!, pos, kv.valueFormat), `V at ${pos}`);
  }
  assert.ok(worst < 4e-3, `keys re-rotated within f16 rounding (worst relative error ${worst})`);
  drain(c);
});

test('the share of document tokens recomputed is the one asked, per sequence and step', () => {
  const c = core({ maxBatchTokens: 512 });
  const { prompt, documents } = blended([2, 1]);
  run(c, [{ prompt, params: { documents, blend: true } }]);
  const before = c.stats().blend!.tokensRecomputed;
  const out = run(c, [{ prompt: blended([1, 2]).prompt, params: { documents: blended([1, 2]).documents, blend: { recompute: 0.3 } } }], 10).get(10)!;
  assert.equal(out.error, undefined);
  assert.equal(out.tokens.length, 10);
  const docTokens = docs[1]!.length + docs[2]!.length;
  assert.equal(c.stats().blend!.tokensRecomputed - before, Math.ceil(0.3 * docTokens));
});

test('gradual filtering narrows over several layers to the same share', () => {
  const c = core({ maxBatchTokens: 512, blendStages: 3 });
  const { prompt, documents } = blended([0, 2]);
  const out = run(c, [{ prompt, params: { documents, blend: { recompute: 0.2 } } }]).get(0)!;
  assert.equal(out.error, undefined);
  const docTokens = docs[0]!.length + docs[2]!.length;
  assert.equal(c.stats().blend!.tokensRecomputed, Math.ceil(0.2 * docTokens));
});

test('blend requests this engine cannot serve are refused by field', () => {
  const { prompt, documents } = blended([0, 1]);
  const errorOf = (c: EngineCore, params: RequestParams) => {
    const events = c.submit(99, prompt, { maxTokens: 2, ...params });
    return events[0]?.error;
  };
  const kivi = core({ kvType: 'kivi4' });
  assert.equal(errorOf(kivi, { documents, blend: true })?.param, 'blend');
  const plain = core();
  assert.equal(errorOf(plain, { documents, kvPolicy: 'h2o', kvBudget: 64 })?.param, 'kv_policy');
  assert.equal(errorOf(plain, { documents: [[5, 3]] })?.param, 'documents');
  assert.equal(errorOf(plain, { documents: [[0, 4]] })?.param, 'documents', 'the first token is never a document');
  assert.equal(errorOf(plain, { documents: [[4, prompt.length]] })?.param, 'documents', 'nor the last');
  assert.equal(errorOf(plain, { documents, blend: { recompute: 2 } })?.param, 'blend');
  // blend: false turns documents off: the request runs as a plain one.
  assert.equal(errorOf(plain, { documents, blend: false }), undefined);
});
