// Static batching, as in a plain HF-style loop: a batch is formed only when the previous one has
// finished, its prompts are prefilled whole in one step, and it decodes until its last sequence ends;
// requests arriving meanwhile wait for the next batch.
import { emptyPlan, Scheduler, type StepPlan } from './scheduler.js';

export class StaticScheduler extends Scheduler {
  readonly kind = 'static' as const;

  plan(): StepPlan {
    const plan = emptyPlan();
    if (this.running.length === 0) {
      for (const seq of this.admissionCandidates()) {
        if (this.tryAdmit(seq, Infinity, true, plan) === 'full') break;
      }
      return plan;
    }
    for (const seq of [...this.running]) {
      if (seq.status === 'running') this.growOrPreempt(seq, seq.pending, plan);
    }
    return plan;
  }
}
