// A model with NaN or +Inf in its weights (or activations that overflow) yields logits no sampler can
// use. That is the model's fault, not the request's: it is reported as an internal error naming the
// cause. -Inf is a valid logit (a masked token) and passes.
import { InternalEngineError } from './error-kind.js';

/** The model file is broken (not the request, not the engine): the CLI prints it as one line. */
export class ModelFaultError extends InternalEngineError {
  override name = 'ModelFaultError';
}

export function assertFiniteLogits(logits: Float32Array): void {
  for (let i = 0; i < logits.length; i++) {
    const l = logits[i]!;
    // NaN fails every comparison; +Inf is the only other value above the largest finite float.
    if (!(l <= 3.4028234663852886e38)) {
      if (l === -Infinity) continue;
      throw new ModelFaultError(
        'non_finite_logits',
        `the model produced a non-finite logit (${String(l)} for token ${i}): its weights hold NaN or Inf values, or its activations overflow`,
      );
    }
  }
}
