// Mixture-of-experts routing: which experts each token goes to and with what weight. The router's
// logits go through a softmax over all experts; each token takes the k most probable ones, weighted by
// their probabilities (renormalised to sum to 1 where the architecture does so), and the batch's
// (token, weight) pairs are grouped by expert so that each expert runs once on all of its tokens.

export interface RoutingOptions {
  nExperts: number;
  /** Experts per token (k). */
  nUsed: number;
  /** Divide the k chosen probabilities by their sum (Mixtral, Qwen3-MoE); Qwen2-MoE keeps them as they are. */
  normalize: boolean;
}

/** The batch's routes grouped by expert: expert e's routes are start[e] .. start[e + 1] - 1. */
export interface Routing {
  start: Int32Array;
  /** The batch row of each route, ascending within an expert. */
  token: Int32Array;
  weight: Float32Array;
}

/** The smallest sum the renormalisation divides by, so a token whose chosen probabilities all underflow stays finite. */
const MIN_WEIGHT_SUM = 6.103515625e-5;

/** Routes n tokens from their router logits ([n, nExperts]). */
export function routeTokens(logits: Float32Array, n: number, o: RoutingOptions): Routing {
  const { nExperts: e, nUsed: k } = o;
  if (!(k >= 1 && k <= e)) throw new RangeError(`routeTokens: ${k} experts per token out of ${e}`);
  if (logits.length < n * e) throw new RangeError(`routeTokens: ${logits.length} logits for ${n} tokens x ${e} experts`);
  const chosen = new Int32Array(n * k);
  const chosenWeight = new Float32Array(n * k);
  const probs = new Float64Array(e);
  const counts = new Int32Array(e);
  for (let t = 0; t < n; t++) {
    const row = t * e;
    let max = -Infinity;
    for (let j = 0; j < e; j++) max = Math.max(max, logits[row + j]!);
    let total = 0;
    for (let j = 0; j < e; j++) total += probs[j] = Math.exp(logits[row + j]! - max);
    // k is small: pick the most probable remaining expert k times (ties go to the lower index).
    let picked = 0;
    for (let i = 0; i < k; i++) {
      let best = -1;
      for (let j = 0; j < e; j++) if (probs[j]! >= 0 && (best < 0 || probs[j]! > probs[best]!)) best = j;
      chosen[t * k + i] = best;
      chosenWeight[t * k + i] = probs[best]! / total;
      picked += probs[best]! / total;
      probs[best] = -1;
      counts[best]!++;
    }
    if (o.normalize) {
      const sum = Math.max(picked, MIN_WEIGHT_SUM);
      for (let i = 0; i < k; i++) chosenWeight[t * k + i] = chosenWeight[t * k + i]! / sum;
    }
  }
  const start = new Int32Array(e + 1);
  for (let j = 0; j < e; j++) start[j + 1] = start[j]! + counts[j]!;
  const next = start.slice(0, e);
  const token = new Int32Array(n * k);
  const weight = new Float32Array(n * k);
  for (let t = 0; t < n; t++) {
    for (let i = 0; i < k; i++) {
      const at = next[chosen[t * k + i]!]!++;
      token[at] = t;
      weight[at] = chosenWeight[t * k + i]!;
    }
  }
  return { start, token, weight };
}
