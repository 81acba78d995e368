// vLLM's original policy, prefill-first: whenever waiting requests can be admitted, the step prefills
// whole prompts (as many as the token budget holds; always at least one) and running decodes wait;
// otherwise the step decodes every running sequence.
import { emptyPlan, Scheduler, type StepPlan } from './scheduler.js';

export class VllmScheduler extends Scheduler {
  readonly kind = 'vllm' as const;

  plan(): StepPlan {
    const plan = emptyPlan();
    while (this.waiting.length > 0) {
      const count = this.waiting[0]!.pending;
      if (plan.work.length > 0 && Scheduler.used(plan) + count > this.limits.maxBatchTokens) break;
      if (!this.admitHead(count, plan)) break;
    }
    if (plan.work.length > 0) return plan;
    for (const seq of [...this.running]) {
      if (seq.status === 'running') this.growOrPreempt(seq, seq.pending, plan);
    }
    return plan;
  }
}
