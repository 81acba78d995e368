// The schedulers against a fake KV with no model (DESIGN.md §8.1: the plan is a value, so planning can be
// tested alone): Sarathi's decode-first budget and chunked prefill, the KV plan each step carries,
// preemption of the newest sequence when pages run out, and admission skipping a request that waits for a
// prefix another sequence is computing.
import assert from 'node:assert/strict';
import { test } from 'node:test';
import type { Completion } from '../../src/engine/completion.js';
import type { Admission, AdmitOptions, EngineKV, GrowOutcome, KVPlan } from '../../src/engine/engine-kv.js';
import { SarathiScheduler } from '../../src/engine/scheduler-sarathi.js';
import { Sequence } from '../../src/engine/sequence.js';
import type { KVStats } from '../../src/kv/index.js';

/** Pages of `pageTokens` tokens from a pool of `pages`; sequences in `waitingForPrefix` are told to wait. */
class FakeKV implements EngineKV {
  readonly kind = 'paged' as const;
  readonly view = undefined as never;
  readonly maxContext = 1024;
  readonly held = new Map<number, number>();
  readonly waitingForPrefix = new Set<number>();
  applied: KVPlan[] = [];
  private free: number;

  constructor(pages: number, readonly maxSlots: number, private readonly pageTokens = 4) {
    this.free = pages;
  }

  cachedPrefix(): number {
    return 0;
  }

  admit(seq: Sequence, opts: AdmitOptions, plan: KVPlan): Admission {
    if (this.waitingForPrefix.has(seq.id)) return { ok: false, wait: 'prefix' };
    const count = Math.min(seq.pending, opts.budget);
    if (this.pages(count) + opts.reservePages > this.free) return { ok: false, wait: 'memory' };
    const slot = [...Array(this.maxSlots).keys()].find((s) => !this.held.has(s));
    if (slot === undefined) return { ok: false, wait: 'slots' };
    this.held.set(slot, 0);
    if (!this.grow(slot, count, plan).ok) return { ok: false, wait: 'memory' };
    plan.admitted.push({ seq, cached: 0 });
    return { ok: true, slot, cached: 0, count };
  }

  freePages(): number {
    return this.free;
  }

  grow(slot: number, tokens: number, plan: KVPlan): GrowOutcome {
    const need = this.pages(tokens) - this.held.get(slot)!;
    if (need > this.free) return { ok: false, reason: 'full' };
    this.free -= Math.max(0, need);
    this.held.set(slot, Math.max(this.held.get(slot)!, this.pages(tokens)));
    plan.targets.set(slot, tokens);
    return { ok: true };
  }

  apply(plan: KVPlan): void {
    this.applied.push(plan);
  }

  publish(): void {}

  fork(): boolean {
    return false;
  }

  release(seq: Sequence, plan?: KVPlan): void {
    if (seq.slot < 0) return;
    this.free += this.held.get(seq.slot)!;
    this.held.delete(seq.slot);
    plan?.targets.delete(seq.slot);
    seq.slot = -1;
  }

  clearPrefixCache(): number {
    return 0;
  }

  stats(): KVStats {
    throw new Error('not used by the scheduler');
  }

  prefixStats(): undefined {
    return undefined;
  }

  close(): void {}

  private pages(tokens: number): number {
    return Math.ceil(tokens / this.pageTokens);
  }
}

let nextId = 1;
function seq(promptTokens: number): Sequence {
  return new Sequence(nextId++, Array.from({ length: promptTokens }, (_, i) => i + 1), { generated: [] as number[] } as unknown as Completion);
}

/** What the engine does after a step, minus the model: tokens computed, one sampled where a sequence caught up. */
function advance(plan: ReturnType<SarathiScheduler['plan']>): void {
  for (const w of plan.work) {
    w.seq.advance(w.count);
    if (w.seq.pending === 0) w.seq.completion.generated.push(7);
  }
}

test('sarathi: decodes first, then a prefill chunk fills the budget; the KV plan lists every slot written', () => {
  const kv = new FakeKV(100, 4);
  const s = new SarathiScheduler(kv, { maxSeqs: 4, maxBatchTokens: 8, watermarkPages: 0 });
  const [a, b, long] = [seq(3), seq(3), seq(20)];
  s.add(a);
  s.add(b);
  const first = s.plan();
  assert.deepEqual(first.work.map((w) => [w.seq.id, w.count]), [[a.id, 3], [b.id, 3]]);
  advance(first);
  s.add(long);
  const second = s.plan();
  assert.deepEqual(second.work.map((w) => [w.seq.id, w.count]), [[a.id, 1], [b.id, 1], [long.id, 6]], 'two decodes, then 6 prompt tokens');
  assert.deepEqual([...second.kv.targets.values()].sort(), [4, 4, 6]);
  assert.deepEqual(second.kv.admitted.map((x) => x.seq.id), [long.id]);
});

test('sarathi: when pages run out, the most recently admitted sequence is preempted and requeued first', () => {
  const kv = new FakeKV(4, 4);
  const s = new SarathiScheduler(kv, { maxSeqs: 4, maxBatchTokens: 64, watermarkPages: 0 });
  const [a, b] = [seq(4), seq(4)];
  s.add(a);
  s.add(b);
  for (let i = 0; i < 5; i++) advance(s.plan());
  // Both now hold 8 tokens (2 pages each): a's next token needs a third page, which only b's release frees.
  assert.equal(kv.freePages(), 0);
  const plan = s.plan();
  assert.deepEqual(plan.preempted.map((x) => x.id), [b.id]);
  assert.deepEqual(plan.work.map((w) => w.seq.id), [a.id]);
  assert.equal(b.computed, 0);
  assert.equal(s.waiting[0], b);
  assert.equal(plan.kv.targets.size, 1, 'the preempted slot left the plan');
});

test('admission skips a request waiting for a prefix being computed and admits the ones behind it', () => {
  const kv = new FakeKV(100, 4);
  const s = new SarathiScheduler(kv, { maxSeqs: 4, maxBatchTokens: 64, watermarkPages: 0, admissionOrder: 'fcfs' });
  const [waits, other] = [seq(8), seq(8)];
  kv.waitingForPrefix.add(waits.id);
  s.add(waits);
  s.add(other);
  const plan = s.plan();
  assert.deepEqual(plan.work.map((w) => w.seq.id), [other.id]);
  assert.deepEqual(s.waiting, [waits]);
  kv.waitingForPrefix.clear();
  assert.deepEqual(s.plan().work.map((w) => w.seq.id).sort(), [other.id, waits.id].sort());
});
