// The scheduler's shared machinery: the waiting queue (FCFS; preempted sequences go back to its front),
// the order admission considers it in (FCFS, or longest cached prefix first), the running set in
// admission order, admission into a KV slot, and growing a sequence's KV before a step — preempting the
// most recently admitted sequence (recompute later) when the pool is dry.
// Policies (one per file) only decide which tokens of which sequences make up each step.
import { emptyKVPlan, type EngineKV, type KVPlan } from './engine-kv.js';
import { stepTokenLimit } from './kv-eviction.js';
import type { Sequence } from './sequence.js';

export type SchedulerKind = 'sarathi' | 'vllm' | 'static';

/**
 * The order waiting requests are admitted in: 'fcfs', or 'prefix' (SGLang's longest-prefix-match: the
 * request with the most cached tokens first, so shared pages are reused while they are cached).
 */
export type AdmissionOrder = 'fcfs' | 'prefix';

export interface SchedulerLimits {
  /** Most sequences running at once (at most the KV slots). */
  maxSeqs: number;
  /** Token budget of one step (prefill chunks + decodes). */
  maxBatchTokens: number;
  /** Free pages admission leaves for running sequences to grow into. */
  watermarkPages: number;
  /** Admission order (default 'prefix'). */
  admissionOrder?: AdmissionOrder;
  /** 'prefix' order: the longest a request waits past its first-come-first-served turn (default 2000 ms). */
  maxAdmissionDelayMs?: number;
}

/** Past this many waiting requests, prefix order falls back to FCFS (SGLang's bound on the lookup work). */
const PREFIX_ORDER_MAX_WAITING = 128;

export type AdmitResult = 'admitted' | 'skipped' | 'full';

/** One sequence's share of a step: its next `count` pending tokens. */
export interface StepWork {
  seq: Sequence;
  count: number;
}

export interface StepPlan {
  work: StepWork[];
  /** What the KV layer does for this step (EngineKV.apply runs it before the model does). */
  kv: KVPlan;
  /** Sequences preempted while planning: KV freed, back at the front of the waiting queue. */
  preempted: Sequence[];
  /** Sequences taken out of the queue because no amount of waiting would let them run. */
  failed: { seq: Sequence; error: Error }[];
}

export function emptyPlan(): StepPlan {
  return { work: [], kv: emptyKVPlan(), preempted: [], failed: [] };
}

export abstract class Scheduler {
  abstract readonly kind: SchedulerKind;
  readonly waiting: Sequence[] = [];
  /** Running sequences, oldest admission first. */
  readonly running: Sequence[] = [];
  private admissions = 0;
  /** The request at the head of the FCFS queue, and since when (for the prefix order's bound). */
  private head: Sequence | undefined;
  private headSince = 0;

  constructor(protected readonly kv: EngineKV, readonly limits: SchedulerLimits) {}

  /** Decides this step's work and backs every sequence in it with KV pages. */
  abstract plan(): StepPlan;

  add(seq: Sequence): void {
    this.waiting.push(seq);
  }

  /** Takes a sequence that already holds a slot (a fork of a running one) straight into the running set. */
  addRunning(seq: Sequence): void {
    seq.status = 'running';
    seq.admissionOrder = this.admissions++;
    seq.admittedAt ??= performance.now();
    this.running.push(seq);
  }

  /** Takes a sequence out (finished or aborted), freeing its KV slot and every page. */
  remove(seq: Sequence): void {
    this.kv.release(seq);
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
   * Waiting requests in the order admission should try them: FCFS, or longest cached prefix first (ties
   * FCFS) unless the head of the FCFS queue has waited its bound past its turn, which then goes first.
   */
  protected admissionCandidates(): Sequence[] {
    const first = this.waiting[0];
    if (first !== this.head) {
      this.head = first;
      this.headSince = performance.now();
    }
    if ((this.limits.admissionOrder ?? 'prefix') === 'fcfs' || this.waiting.length < 2 || this.waiting.length > PREFIX_ORDER_MAX_WAITING) {
      return [...this.waiting];
    }
    const cached = new Map(this.waiting.map((s) => [s, this.kv.cachedPrefix(s)]));
    const ordered = [...this.waiting].sort((a, b) => cached.get(b)! - cached.get(a)!);
    if (performance.now() - this.headSince >= (this.limits.maxAdmissionDelayMs ?? 2000)) {
      return [first!, ...ordered.filter((s) => s !== first)];
    }
    return ordered;
  }

  /**
   * Tries to admit `seq` for at most `budget` tokens (all its pending tokens if `whole`): a slot with its
   * cached prefix, and pages for the rest while keeping the watermark (waived when nothing else runs, so
   * one request always makes progress). 'skipped': it waits for a prefix another sequence is computing,
   * for a tier lookup, or for chunk jobs computing its documents,
   * or it failed (a request that cannot be backed even alone goes to plan.failed instead of waiting for
   * memory nothing will free); 'full': no slot or memory now.
   */
  protected tryAdmit(seq: Sequence, budget: number, whole: boolean, plan: StepPlan): AdmitResult {
    if (this.running.length >= this.limits.maxSeqs) return 'full';
    const reservePages = this.running.length === 0 ? 0 : this.limits.watermarkPages;
    const a = this.kv.admit(seq, { budget, whole, reservePages }, plan.kv);
    if (!a.ok) {
      if (a.wait === 'prefix' || a.wait === 'loading' || a.wait === 'chunks') return 'skipped';
      if (a.wait === 'refused' && this.running.length === 0) {
        drop(this.waiting, seq);
        plan.failed.push({ seq, error: new RangeError(`cannot back this request's KV cache: ${a.reason ?? 'the KV pool refused'}`) });
        return 'skipped';
      }
      return 'full';
    }
    drop(this.waiting, seq);
    seq.slot = a.slot;
    seq.computed = a.cached;
    seq.rows = a.cached;
    this.kv.eviction?.admitted(seq);
    seq.status = 'running';
    seq.admissionOrder = this.admissions++;
    seq.admittedAt ??= performance.now();
    this.running.push(seq);
    plan.work.push({ seq, count: a.count });
    return 'admitted';
  }

  /**
   * Backs a running sequence for its next `count` tokens (fewer for a sequence bounded by eviction, which
   * first evicts down to its budget) and adds it to the plan, preempting the most recently admitted
   * sequences while the pool is too small. Returns false when `seq` itself had to be preempted.
   */
  protected growOrPreempt(seq: Sequence, wanted: number, plan: StepPlan): boolean {
    const count = Math.min(wanted, stepTokenLimit(seq));
    const fits = () => (this.kv.eviction?.makeRoom(seq, count) ?? true) && this.kv.grow(seq.slot, seq.rows + count, plan.kv).ok;
    while (!fits()) {
      const victim = this.running.reduce((a, b) => (b.admissionOrder > a.admissionOrder ? b : a));
      this.preempt(victim, plan);
      if (victim === seq) return false;
    }
    plan.work.push({ seq, count });
    return true;
  }

  /** Frees a running sequence's KV; it recomputes everything it had when it is admitted again. */
  protected preempt(seq: Sequence, plan: StepPlan): void {
    this.kv.release(seq, plan.kv);
    drop(this.running, seq);
    const planned = plan.work.findIndex((w) => w.seq === seq);
    if (planned >= 0) plan.work.splice(planned, 1);
    seq.status = 'waiting';
    seq.computed = 0;
    seq.rows = 0;
    seq.preemptions++;
    this.waiting.unshift(seq);
    plan.preempted.push(seq);
  }
}

function drop<T>(list: T[], item: T): void {
  const i = list.indexOf(item);
  if (i >= 0) list.splice(i, 1);
}
