// Mixture-of-experts routing: which experts each token goes to and with what weight. Each token takes
// the k experts of highest router probability (the softmax of its router logits, computed by the
// backend), in decreasing order; their probabilities are its weights, divided by their sum where the
// architecture renormalises. The arithmetic is llama.cpp's, in f32, so that both engines weight and add
// the experts' outputs to the same bits: the sum is taken in f64 over the chosen weights in that order,
// rounded to f32 and kept from 0 by MIN_WEIGHT_SUM, and each weight is divided by it in f32. The batch's
// routes are grouped by expert so that each expert runs once on all of its tokens.

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
  /** The route's place among its token's k experts, 0 for the most probable. */
  slot: Int32Array;
  weight: Float32Array;
}

/** The smallest sum the renormalisation divides by (f16's smallest normal), so a token whose chosen probabilities all underflow stays finite. */
const MIN_WEIGHT_SUM = 6.103515625e-5;

/** Routes n tokens from their router probabilities ([n, nExperts], each row a softmax). */
export function routeTokens(probs: Float32Array, n: number, o: RoutingOptions): Routing {
  const { nExperts: e, nUsed: k } = o;
  if (!(k >= 1 && k <= e)) throw new RangeError(`routeTokens: ${k} experts per token out of ${e}`);
  if (probs.length < n * e) throw new RangeError(`routeTokens: ${probs.length} probabilities for ${n} tokens x ${e} experts`);
  const chosen = new Int32Array(n * k);
  const chosenWeight = new Float32Array(n * k);
  const taken = new Uint8Array(e);
  const counts = new Int32Array(e);
  for (let t = 0; t < n; t++) {
    const row = t * e;
    taken.fill(0);
    // k is small: pick the most probable remaining expert k times (ties go to the lower index).
    for (let i = 0; i < k; i++) {
      let best = -1;
      for (let j = 0; j < e; j++) if (!taken[j] && (best < 0 || probs[row + j]! > probs[row + best]!)) best = j;
      taken[best] = 1;
      chosen[t * k + i] = best;
      chosenWeight[t * k + i] = probs[row + best]!;
      counts[best]!++;
    }
    if (o.normalize) {
      let sum = 0;
      for (let i = 0; i < k; i++) sum += chosenWeight[t * k + i]!;
      const divisor = Math.max(Math.fround(sum), MIN_WEIGHT_SUM);
      for (let i = 0; i < k; i++) chosenWeight[t * k + i] = chosenWeight[t * k + i]! / divisor;
    }
  }
  const start = new Int32Array(e + 1);
  for (let j = 0; j < e; j++) start[j + 1] = start[j]! + counts[j]!;
  const next = start.slice(0, e);
  const token = new Int32Array(n * k);
  const slot = new Int32Array(n * k);
  const weight = new Float32Array(n * k);
  for (let t = 0; t < n; t++) {
    for (let i = 0; i < k; i++) {
      const at = next[chosen[t * k + i]!]!++;
      token[at] = t;
      slot[at] = i;
      weight[at] = chosenWeight[t * k + i]!;
    }
  }
  return { start, token, slot, weight };
}
