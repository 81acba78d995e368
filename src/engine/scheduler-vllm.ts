// vLLM's original policy, prefill-first: whenever waiting requests can be admitted, the step prefills
// whole prompts (as many as the token budget holds; always at least one) and running decodes wait;
// otherwise the step decodes every running sequence.
import { emptyPlan, Scheduler, type StepPlan } from './scheduler.js';

export class VllmScheduler extends Scheduler {
  readonly kind = 'vllm' as const;

  plan(): StepPlan {
    const plan = emptyPlan();
    for (const seq of this.admissionCandidates()) {
      const budget = plan.work.length === 0 ? Infinity : this.limits.maxBatchTokens - Scheduler.used(plan);
      if (this.tryAdmit(seq, budget, true, plan) === 'full') break;
    }
    if (plan.work.length > 0) return plan;
    for (const seq of [...this.running]) {
      if (seq.status === 'running') this.growOrPreempt(seq, seq.pending, plan);
    }
    return plan;
  }
}
