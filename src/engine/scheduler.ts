// The scheduler's shared machinery: the waiting queue (FCFS; preempted sequences go back to its front),
// the running set in admission order, admission into a KV slot, and growing a sequence's KV before a
// step — preempting the most recently admitted sequence (recompute later) when the pool is dry.
// Policies (one per file) only decide which tokens of which sequences make up each step.
import type { EngineKV } from './engine-kv.js';
import type { Sequence } from './sequence.js';

export type SchedulerKind = 'sarathi' | 'vllm' | 'static';

export interface SchedulerLimits {
  /** Most sequences running at once (at most the KV slots). */
  maxSeqs: number;
  /** Token budget of one step (prefill chunks + decodes). */
  maxBatchTokens: number;
  /** Free pages admission leaves for running sequences to grow into. */
  watermarkPages: number;
}

/** One sequence's share of a step: its next `count` pending tokens. */
export interface StepWork {
  seq: Sequence;
  count: number;
}

export interface StepPlan {
  work: StepWork[];
  /** Sequences preempted while planning: KV freed, back at the front of the waiting queue. */
  preempted: Sequence[];
  /** Sequences taken out of the queue because no amount of waiting would let them run. */
  failed: { seq: Sequence; error: Error }[];
}

export function emptyPlan(): StepPlan {
  return { work: [], preempted: [], failed: [] };
}

export abstract class Scheduler {
  abstract readonly kind: SchedulerKind;
  readonly waiting: Sequence[] = [];
  /** Running sequences, oldest admission first. */
  readonly running: Sequence[] = [];
  private admissions = 0;

  constructor(protected readonly kv: EngineKV, readonly limits: SchedulerLimits) {}

  /** Decides this step's work and backs every sequence in it with KV pages. */
  abstract plan(): StepPlan;

  add(seq: Sequence): void {
    this.waiting.push(seq);
  }

  /** Takes a sequence out (finished or aborted), freeing its KV slot and every page. */
  remove(seq: Sequence): void {
    this.release(seq);
    drop(this.waiting, seq);
    drop(this.running, seq);
    seq.status = 'finished';
  }

  get hasWork(): boolean {
    return this.waiting.length > 0 || this.running.length > 0;
  }

  /** Tokens the plan already spends. */
  protected static used(plan: StepPlan): number {
    return plan.work.reduce((n, w) => n + w.count, 0);
  }

  /**
   * Admits the head of the waiting queue for its next `count` tokens if a slot is free and the pool can
   * back them while keeping the watermark (waived when nothing else holds pages, so one request always
   * makes progress). Adds the work to the plan; returns false (nothing changed) otherwise. A head that
   * cannot be backed even with nothing else running (the process's mapping limit) fails instead of
   * waiting for memory that nothing will free.
   */
  protected admitHead(count: number, plan: StepPlan): boolean {
    const seq = this.waiting[0];
    if (!seq || this.running.length >= this.limits.maxSeqs) return false;
    const need = this.kv.pagesFor(seq.computed + count);
    const reserve = this.running.length === 0 ? 0 : this.limits.watermarkPages;
    if (need + reserve > this.kv.freePages()) return false;
    const slot = this.kv.allocSlot();
    if (slot === undefined) return false;
    if (!this.kv.grow(slot, seq.computed + count)) {
      this.kv.freeSlot(slot);
      if (this.running.length === 0) {
        this.waiting.shift();
        plan.failed.push({ seq, error: new RangeError(`cannot back this request's KV cache: ${this.kv.lastRefusal ?? 'the KV pool refused'}`) });
      }
      return false;
    }
    this.waiting.shift();
    seq.slot = slot;
    seq.status = 'running';
    seq.admissionOrder = this.admissions++;
    seq.admittedAt ??= performance.now();
    this.running.push(seq);
    plan.work.push({ seq, count });
    return true;
  }

  /**
   * Backs a running sequence for its next `count` tokens and adds it to the plan, preempting the most
   * recently admitted sequences while the pool is too small. Returns false when `seq` itself had to be
   * preempted.
   */
  protected growOrPreempt(seq: Sequence, count: number, plan: StepPlan): boolean {
    while (!this.kv.grow(seq.slot, seq.computed + count)) {
      const victim = this.running.reduce((a, b) => (b.admissionOrder > a.admissionOrder ? b : a));
      this.preempt(victim, plan);
      if (victim === seq) return false;
    }
    plan.work.push({ seq, count });
    return true;
  }

  /** Frees a running sequence's KV; it recomputes everything it had when it is admitted again. */
  protected preempt(seq: Sequence, plan: StepPlan): void {
    this.release(seq);
    drop(this.running, seq);
    const planned = plan.work.findIndex((w) => w.seq === seq);
    if (planned >= 0) plan.work.splice(planned, 1);
    seq.status = 'waiting';
    seq.computed = 0;
    seq.preemptions++;
    this.waiting.unshift(seq);
    plan.preempted.push(seq);
  }

  private release(seq: Sequence): void {
    if (seq.slot >= 0) this.kv.freeSlot(seq.slot);
    seq.slot = -1;
  }
}

function drop<T>(list: T[], item: T): void {
  const i = list.indexOf(item);
  if (i >= 0) list.splice(i, 1);
}
