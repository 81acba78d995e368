// Turns one row of logits into the next token. The order of the transforms follows llama.cpp's default
// chain: penalties, top-k, top-p, min-p, temperature, then a draw. Temperature <= 0 means greedy.
import { assertFiniteLogits } from './finite-logits.js';
import { Rng, randomSeed } from './rng.js';
import { RequestFaultError } from './error-kind.js';
import { samplingKernels } from './sampling-kernels.js';

export interface SamplingParams {
  temperature?: number;
  topK?: number;
  topP?: number;
  minP?: number;
  /** Divides positive logits / multiplies negative ones of tokens already seen (1 = off). */
  repetitionPenalty?: number;
  /** Subtracted once from the logit of every token already generated (0 = off). */
  presencePenalty?: number;
  /** Subtracted per occurrence from the logit of generated tokens (0 = off). */
  frequencyPenalty?: number;
  /** How many recent tokens the penalties look at (default 64; -1 = all). */
  penaltyLastN?: number;
  seed?: number;
  /** Return the top-n log-probabilities with each token (0 = none). */
  topLogprobs?: number;
  /** Token id -> a value in [-100, 100] added to its logit before sampling (OpenAI's logit_bias). */
  logitBias?: Record<number, number>;
}

export interface TokenLogprob {
  token: number;
  logprob: number;
}

export interface SampledToken {
  token: number;
  /** Log-probability of the chosen token under the model's (unpenalised, untempered) distribution. */
  logprob: number;
  top: TokenLogprob[];
}

export class SamplingError extends RequestFaultError {
  override name = 'SamplingError';
  constructor(param: string, message: string) {
    super(message, 'invalid_value', param);
  }
}

/** Checks ranges once, up front, so a bad request fails before it takes any resources. */
export function validateSamplingParams(p: SamplingParams): void {
  const check = (name: string, v: number | undefined, ok: (v: number) => boolean, range: string) => {
    if (v !== undefined && !(typeof v === 'number' && Number.isFinite(v) && ok(v))) {
      throw new SamplingError(name, `${name} must be ${range}, got ${String(v)}`);
    }
  };
  check('temperature', p.temperature, (v) => v >= 0 && v <= 100, 'between 0 and 100');
  check('top_k', p.topK, (v) => Number.isInteger(v) && v >= 0, 'a non-negative integer');
  check('top_p', p.topP, (v) => v > 0 && v <= 1, 'in (0, 1]');
  check('min_p', p.minP, (v) => v >= 0 && v <= 1, 'in [0, 1]');
  check('repetition_penalty', p.repetitionPenalty, (v) => v > 0 && v <= 10, 'in (0, 10]');
  check('presence_penalty', p.presencePenalty, (v) => v >= -2 && v <= 2, 'between -2 and 2');
  check('frequency_penalty', p.frequencyPenalty, (v) => v >= -2 && v <= 2, 'between -2 and 2');
  check('penalty_last_n', p.penaltyLastN, (v) => Number.isInteger(v) && v >= -1, 'an integer >= -1');
  check('seed', p.seed, (v) => Number.isInteger(v), 'an integer');
  check('top_logprobs', p.topLogprobs, (v) => Number.isInteger(v) && v >= 0 && v <= 20, 'an integer between 0 and 20');
  if (p.logitBias !== undefined) {
    if (typeof p.logitBias !== 'object' || p.logitBias === null) throw new SamplingError('logit_bias', 'logit_bias must map token ids to numbers');
    for (const [id, bias] of Object.entries(p.logitBias)) {
      if (!/^\d+$/.test(id)) throw new SamplingError('logit_bias', `logit_bias keys must be token ids, got "${id}"`);
      check('logit_bias', bias, (v) => v >= -100 && v <= 100, 'between -100 and 100');
    }
  }
}

export class Sampler {
  private readonly rng: Rng;
  private readonly p: Required<Omit<SamplingParams, 'seed' | 'logitBias'>>;
  /** logit_bias as parallel arrays, applied on every draw. */
  private readonly biasIds: number[];
  private readonly biasValues: number[];

  constructor(params: SamplingParams = {}) {
    validateSamplingParams(params);
    this.rng = new Rng(params.seed ?? randomSeed());
    this.p = {
      temperature: params.temperature ?? 1,
      topK: params.topK ?? 0,
      topP: params.topP ?? 1,
      minP: params.minP ?? 0,
      repetitionPenalty: params.repetitionPenalty ?? 1,
      presencePenalty: params.presencePenalty ?? 0,
      frequencyPenalty: params.frequencyPenalty ?? 0,
      penaltyLastN: params.penaltyLastN ?? 64,
      topLogprobs: params.topLogprobs ?? 0,
    };
    const bias = Object.entries(params.logitBias ?? {}).filter(([, v]) => v !== 0);
    this.biasIds = bias.map(([id]) => Number(id));
    this.biasValues = bias.map(([, v]) => v);
  }

  /**
   * Picks the next token from `logits` given the tokens generated so far (for penalties). `allowed`,
   * when given, masks the vocabulary (constrained decoding): only ids where it is 1 can be drawn.
   */
  sample(logits: Float32Array, history: readonly number[] = [], allowed?: Uint8Array): SampledToken {
    const p = this.p;
    const k = samplingKernels();
    const model = k.stats(logits);
    // A NaN or +Inf logit makes the log-sum-exp non-finite; only then is it worth finding which one.
    if (!Number.isFinite(model.logSumExp)) assertFiniteLogits(logits);
    let work = this.applyBias(this.applyPenalties(logits, history), logits);
    if (allowed) {
      if (work === logits) work = logits.slice();
      for (let i = 0; i < work.length; i++) if (!allowed[i]) work[i] = -Infinity;
    }
    const shaped = work === logits ? model : k.stats(work);

    let token: number;
    if (p.temperature <= 0) {
      token = shaped.argmax;
    } else if (p.topK === 0) {
      // Top-p and min-p without top-k keep every token above a floor: found in two passes, not a sort.
      let floor = p.topP < 1 ? k.nucleusFloor(work, shaped.logSumExp, p.topP) : -Infinity;
      if (p.minP > 0) floor = Math.max(floor, shaped.max + Math.log(p.minP));
      token = k.drawTempered(work, p.temperature, this.rng.next(), floor, shaped.max);
    } else {
      // Top-k first: the k best, then top-p and min-p among them (renormalised), as llama.cpp chains them.
      let cand = Array.from(k.topIndices(work, p.topK)).filter((i) => work[i]! > -Infinity);
      const probs = softmaxOf(cand.map((i) => work[i]!));
      let keep = cand.length;
      if (p.topP < 1) {
        let cum = 0;
        for (let i = 0; i < probs.length; i++) {
          cum += probs[i]!;
          if (cum >= p.topP) { keep = i + 1; break; }
        }
      }
      if (p.minP > 0) {
        const floor = probs[0]! * p.minP;
        let n = 0;
        while (n < keep && probs[n]! >= floor) n++;
        keep = Math.max(1, n);
      }
      cand = cand.slice(0, keep);
      const tempered = softmaxOf(cand.map((i) => work[i]! / p.temperature));
      let r = this.rng.next();
      token = cand[cand.length - 1]!;
      for (let i = 0; i < cand.length; i++) {
        r -= tempered[i]!;
        if (r < 0) { token = cand[i]!; break; }
      }
    }
    const top = p.topLogprobs > 0 ? Array.from(k.topIndices(logits, p.topLogprobs), (t) => ({ token: t, logprob: logits[t]! - model.logSumExp })) : [];
    return { token, logprob: logits[token]! - model.logSumExp, top };
  }

  /** Adds logit_bias; copies first unless `work` is already a copy of `original`. */
  private applyBias(work: Float32Array, original: Float32Array): Float32Array {
    if (this.biasIds.length === 0) return work;
    const out = work === original ? work.slice() : work;
    this.biasIds.forEach((id, k) => {
      if (id < out.length) out[id] = out[id]! + this.biasValues[k]!;
    });
    return out;
  }

  private applyPenalties(logits: Float32Array, history: readonly number[]): Float32Array {
    const p = this.p;
    if (p.repetitionPenalty === 1 && p.presencePenalty === 0 && p.frequencyPenalty === 0) return logits;
    const recent = p.penaltyLastN < 0 ? history : history.slice(Math.max(0, history.length - p.penaltyLastN));
    const counts = new Map<number, number>();
    for (const t of recent) counts.set(t, (counts.get(t) ?? 0) + 1);
    const out = logits.slice();
    for (const [t, count] of counts) {
      if (t < 0 || t >= out.length) continue;
      let l = out[t]!;
      if (p.repetitionPenalty !== 1) l = l > 0 ? l / p.repetitionPenalty : l * p.repetitionPenalty;
      l -= p.presencePenalty + count * p.frequencyPenalty;
      out[t] = l;
    }
    return out;
  }
}

export function argmax(a: Float32Array): number {
  let best = 0;
  for (let i = 1; i < a.length; i++) if (a[i]! > a[best]!) best = i;
  return best;
}

/** Log-probabilities of the whole vocabulary (tests and tools; sampling itself never needs them all). */
export function logSoftmax(logits: Float32Array): Float64Array {
  const lse = samplingKernels().stats(logits).logSumExp;
  const out = new Float64Array(logits.length);
  for (let i = 0; i < logits.length; i++) out[i] = logits[i]! - lse;
  return out;
}

function softmaxOf(values: number[]): number[] {
  let max = -Infinity;
  for (const v of values) if (v > max) max = v;
  const e = values.map((v) => Math.exp(v - max));
  let sum = 0;
  for (const v of e) sum += v;
  return e.map((v) => v / sum);
}
