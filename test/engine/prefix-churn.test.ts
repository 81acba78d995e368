// The prefix cache under churn, without a model: 10,000 requests drawn from a few shared prefixes go
// through the real scheduler and KV managers (admission with cached prefixes, growth, publishing,
// eviction under pool pressure, preemption of sequences that hold shared pages, aborts of requests that
// are computing blocks others wait for). After every step the pool's accounting must hold; at the end
// every page is free or held by the cache, and clearing the cache returns the pool to where it started.
import assert from 'node:assert/strict';
import { test } from 'node:test';
import type { Completion } from '../../src/engine/completion.js';
import { kvBytesPerToken, ManagedKV } from '../../src/engine/managed-kv.js';
import { SarathiScheduler } from '../../src/engine/scheduler-sarathi.js';
import { Sequence } from '../../src/engine/sequence.js';
import { VirtualKVManager } from '../../src/kv/index.js';
import { makeRng } from '../kv/rng.js';
import { KV_MANAGERS, virtualUnavailable } from './engine-helpers.js';

const REQUESTS = 10_000;
const GEOMETRY = { nLayers: 2, kvHeads: 1, headDim: 16, maxSlots: 8, maxContext: 256 };
const TOKEN_BYTES = kvBytesPerToken(GEOMETRY) / (2 * GEOMETRY.nLayers);

/** A generation stand-in: the scheduler only reads the tokens generated so far. */
function fakeCompletion(): Completion {
  return { generated: [] as number[] } as unknown as Completion;
}

function checkPool(kv: ManagedKV): void {
  const s = kv.stats();
  assert.equal(s.freePages + s.usedPages, s.totalPages, 'every page is free or used');
  assert.ok(s.runningPages >= 0 && s.cachedPages >= 0, 'no negative page counts');
  const m = kv.manager;
  if (m instanceof VirtualKVManager) {
    const refs = m.native.refCounts();
    assert.equal(refs.filter((r) => r === 0).length, s.freePages, 'free pages have no references');
  }
}

for (const kind of KV_MANAGERS) {
  test(`${kind} KV: ${REQUESTS} requests of churn leave every page free or cached`, { skip: kind === 'virtual' ? virtualUnavailable() : undefined }, () => {
    const rng = makeRng(kind.length * 7919);
    // A pool for about three full contexts, so eviction and preemption both happen.
    const kv = ManagedKV.create({ ...GEOMETRY }, { kind, kvMemory: 3 * GEOMETRY.maxContext * 2 * GEOMETRY.nLayers * TOKEN_BYTES, pageSize: 4096, blockSize: 16, fingerprint: 'churn' });
    const sched = new SarathiScheduler(kv, { maxSeqs: GEOMETRY.maxSlots, maxBatchTokens: 64, watermarkPages: 0 });
    const initialFree = kv.freePages();
    const prefixes = Array.from({ length: 5 }, (_, p) => Array.from({ length: 40 + p * 30 }, (_, i) => 1 + ((p * 131 + i * 17) % 500)));
    const live = new Map<number, { seq: Sequence; maxTokens: number }>();
    let submitted = 0;
    let finished = 0;
    let steps = 0;
    let preemptions = 0;
    while (finished < REQUESTS) {
      while (submitted < REQUESTS && live.size < 24 && rng.next() < 0.7) {
        const prefix = prefixes[rng.int(prefixes.length)]!;
        const tail = Array.from({ length: 1 + rng.int(30) }, () => 1 + rng.int(500));
        const seq = new Sequence(submitted, [...prefix.slice(0, 1 + rng.int(prefix.length)), ...tail], fakeCompletion(), rng.next() < 0.1 ? 'salted' : '');
        live.set(submitted++, { seq, maxTokens: 1 + rng.int(40) });
        sched.add(seq);
      }
      // Aborts hit waiting, prefilling (possibly computing blocks others wait for) and decoding requests.
      if (rng.next() < 0.05 && live.size > 0) {
        const ids = [...live.keys()];
        const id = ids[rng.int(ids.length)]!;
        sched.remove(live.get(id)!.seq);
        live.delete(id);
        finished++;
      }
      const plan = sched.plan();
      assert.equal(plan.failed.length, 0, 'nothing fails for want of memory that exists');
      preemptions += plan.preempted.length;
      kv.apply(plan.kv);
      for (const w of plan.work) {
        w.seq.advance(w.count);
        kv.publish(w.seq);
        if (w.seq.pending === 0) {
          const r = live.get(w.seq.id)!;
          w.seq.completion.generated.push(1 + rng.int(500));
          if (w.seq.completion.generated.length >= r.maxTokens || w.seq.length >= GEOMETRY.maxContext) {
            sched.remove(w.seq);
            live.delete(w.seq.id);
            finished++;
          }
        }
      }
      checkPool(kv);
      if (++steps > 40 * REQUESTS) assert.fail('the churn does not finish');
    }
    const s = kv.stats();
    assert.equal(s.runningPages, 0, 'no page is used by a running sequence');
    assert.equal(s.freePages + s.idlePages + s.cachedPages, s.totalPages, 'every page is free, idle or cached');
    const p = kv.prefixStats()!;
    assert.ok(p.hitTokens > 0 && p.evictions > 0, `the cache hit and evicted: ${JSON.stringify(p)}`);
    // Static slots are backed for the whole context at admission: requests queue instead of being preempted.
    if (kind !== 'static') assert.ok(preemptions > 0, 'sequences holding shared pages were preempted');
    kv.clearPrefixCache();
    assert.equal(kv.freePages(), initialFree, 'clearing the cache returns the pool to its initial state');
    assert.equal(kv.prefixStats()!.entries, 0);
    kv.close();
  });
}
