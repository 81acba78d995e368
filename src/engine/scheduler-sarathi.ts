// Sarathi-Serve's policy: a per-step token budget, spent first on one token for every running decode
// (decode-maximal batches), then on prefill chunks — of sequences already running, then of waiting ones
// admitted in the admission order (FCFS or longest cached prefix first) while free KV pages (above a
// watermark) allow. Long prompts are split across steps, so a prefill never stalls the decodes running
// beside it.
import { emptyPlan, Scheduler, type StepPlan } from './scheduler.js';

export class SarathiScheduler extends Scheduler {
  readonly kind = 'sarathi' as const;

  plan(): StepPlan {
    const plan = emptyPlan();
    const budget = this.limits.maxBatchTokens;
    const left = () => budget - Scheduler.used(plan);

    for (const seq of [...this.running]) {
      if (seq.status !== 'running' || seq.pending !== 1 || left() < 1) continue;
      this.growOrPreempt(seq, 1, plan);
    }
    for (const seq of [...this.running]) {
      if (seq.status !== 'running' || seq.pending <= 1 || left() < 1) continue;
      this.growOrPreempt(seq, Math.min(seq.pending, left()), plan);
    }
    for (const seq of this.admissionCandidates()) {
      if (left() < 1 || this.tryAdmit(seq, left(), false, plan) === 'full') break;
    }
    return plan;
  }
}
