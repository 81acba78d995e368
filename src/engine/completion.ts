// The output side of one request: sampling each next token, ending on EOS, a stop string or the token
// limit, and turning tokens into streamable text. The single-sequence generate loop and the serving
// engine both drive it, so their outputs agree token for token.
import { Sampler, type SamplingParams, type TokenLogprob } from './sampler.js';
import { StopMatcher } from './stop-matcher.js';
import { RequestFaultError } from './error-kind.js';
import { JsonConstraint, type VocabularyTokenizer } from '../constrained/json-constraint.js';
import type { ResponseFormat } from '../constrained/json-schema.js';
import { TriggeredConstraint, type TriggeredFormat } from '../constrained/triggered-constraint.js';

/** What generation needs of a tokenizer. */
export interface GenerationTokenizer {
  encode(text: string, opts?: { addSpecial?: boolean; parseSpecial?: boolean }): number[];
  isEndOfGeneration(id: number): boolean;
  /**
   * A fresh incremental decoder: push(id) returns complete text, flush() the rest. Generated text is
   * decoded with skipSpecial: a control token the model emits (e.g. BOS mid-story) is no text.
   */
  streamDecoder(opts?: { skipSpecial?: boolean }): { push(id: number): string; flush(): string };
  /** For response_format: the vocabulary's size and each token's bytes (renderSpecial false: as generated). */
  readonly vocabSize?: number;
  tokenToPiece?(id: number, renderSpecial?: boolean): Uint8Array;
}

/** A request's parameters: the sampler's, plus when to stop and what to report. */
export interface RequestParams extends SamplingParams {
  /** Tokens to generate at most (default: until the context is full). */
  maxTokens?: number;
  stop?: string[];
  /** Return the chosen token's logprob and the top-n alternatives (topLogprobs) with each delta. */
  logprobs?: boolean;
  /** Choices to generate from the prompt (OpenAI's n, default 1): the prompt is computed once and shared. */
  n?: number;
  /** Prefix-cache tenant key: requests with different salts never share cached blocks (vLLM's cache_salt). */
  cacheSalt?: string;
  /** Constrain the output to JSON (any object, or a document a JSON Schema accepts). */
  responseFormat?: ResponseFormat;
  /**
   * Constrain only the parts of the output between a trigger text and its closing text (tool calls a
   * model writes when it chooses to); the rest is free.
   */
  triggeredFormat?: TriggeredFormat;
  /** Chat only: the function tools the chat template renders into the prompt (OpenAI's `tools`, as sent). */
  tools?: readonly unknown[];
  /** KV eviction policy ('none': the full cache; default: the engine's kvPolicy). See engine/kv-eviction.ts. */
  kvPolicy?: string;
  /** Tokens the policy keeps, or a fraction (0..1) of the prompt (default: the engine's kvBudget). */
  kvBudget?: number;
  /**
   * Reuse the cached KV of the prompt's documents wherever they appear (CacheBlend, see engine/blend.ts):
   * true, or { recompute } = the share (0..1) of document tokens recomputed (default: the engine's).
   * Text prompts are split into documents at the engine's blend separator; chat content parts marked
   * `document: true` are documents (and turn blending on by themselves).
   */
  blend?: boolean | { recompute?: number };
  /** Token ranges [start, end) of the prompt's documents: set by the prompt encoder from the marks above. */
  documents?: readonly (readonly [number, number])[];
}

export interface GenerateDelta {
  /** Which choice this delta belongs to, when the request asked for n > 1 (absent for choice 0). */
  index?: number;
  text: string;
  tokens: number[];
  logprobs?: TokenLogprobs[];
}

/** A generated token's logprob and its top alternatives. */
export interface TokenLogprobs {
  token: number;
  logprob: number;
  top: TokenLogprob[];
}

export type FinishReason = 'stop' | 'length';

export class ContextLengthError extends RequestFaultError {
  override name = 'ContextLengthError';
  constructor(message: string, param = 'prompt') {
    super(message, 'context_length_exceeded', param);
  }
}

/**
 * Checks that a prompt leaves room for one generated token and for max_tokens, when given (as vLLM
 * does: a request that cannot get what it asked for is refused, not cut short); returns how many
 * tokens may be generated.
 */
export function completionBudget(promptTokens: number, context: number, maxTokens: number | undefined): number {
  if (promptTokens === 0) throw new RequestFaultError('the prompt is empty (no tokens)', 'invalid_value', 'prompt');
  if (promptTokens >= context) {
    throw new ContextLengthError(`the prompt has ${promptTokens} tokens; the context holds ${context} (prompt plus at least one generated token)`);
  }
  if (maxTokens !== undefined && !(Number.isInteger(maxTokens) && maxTokens >= 0)) {
    throw new RequestFaultError(`max_tokens must be a non-negative integer, got ${String(maxTokens)}`, 'invalid_value', 'max_tokens');
  }
  if (maxTokens !== undefined && promptTokens + maxTokens > context) {
    throw new ContextLengthError(
      `the context holds ${context} tokens, but the request needs ${promptTokens + maxTokens} ` +
        `(${promptTokens} in the prompt, max_tokens ${maxTokens} to generate); shorten the prompt or lower max_tokens`,
      'max_tokens',
    );
  }
  return Math.min(maxTokens ?? Infinity, context - promptTokens);
}

/**
 * The same for a sequence that eviction keeps within `context` rows: its prompt and output may be
 * longer than the context; without max_tokens it generates at most `context` tokens.
 */
export function boundedCompletionBudget(promptTokens: number, context: number, maxTokens: number | undefined): number {
  if (promptTokens === 0) throw new RequestFaultError('the prompt is empty (no tokens)', 'invalid_value', 'prompt');
  if (maxTokens !== undefined && !(Number.isInteger(maxTokens) && maxTokens >= 0)) {
    throw new RequestFaultError(`max_tokens must be a non-negative integer, got ${String(maxTokens)}`, 'invalid_value', 'max_tokens');
  }
  return maxTokens ?? context;
}

export class Completion {
  readonly generated: number[] = [];
  private readonly sampler: Sampler;
  private readonly stop: StopMatcher;
  private readonly detok: { push(id: number): string; flush(): string };
  private readonly constraint: OutputConstraint | undefined;
  private finish: FinishReason | undefined;
  /** Characters decoded so far, and how many of them the stop matcher has let out. */
  private decoded = 0;
  private emitted = 0;
  /** Logprobs of tokens whose text is not all out yet, with where that text lies in the decoded output. */
  private held: { entry: TokenLogprobs; start: number; end: number }[] = [];

  constructor(
    private readonly tokenizer: GenerationTokenizer,
    private readonly params: RequestParams,
    /** From completionBudget. */
    readonly maxTokens: number,
  ) {
    this.sampler = new Sampler({ ...params, topLogprobs: params.logprobs ? (params.topLogprobs ?? 0) : 0 });
    this.stop = new StopMatcher(params.stop ?? []);
    this.detok = tokenizer.streamDecoder({ skipSpecial: true });
    this.constraint = outputConstraint(tokenizer, params, maxTokens);
  }

  get finishReason(): FinishReason | undefined {
    return this.finish;
  }

  /**
   * Samples the next token from one row of logits. Returns its delta (undefined when the token ends
   * generation without text, i.e. EOS); check finishReason afterwards.
   */
  accept(logits: Float32Array): GenerateDelta | undefined {
    if (this.finish) throw new Error('accept after the completion finished');
    const mask = this.constraint?.allowed(this.maxTokens - this.generated.length);
    const pick = this.sampler.sample(logits, this.generated, mask);
    this.constraint?.advance(pick.token);
    if (this.tokenizer.isEndOfGeneration(pick.token)) {
      this.finish = 'stop';
      return undefined;
    }
    this.generated.push(pick.token);
    const piece = this.detok.push(pick.token) + (this.constraint?.controlText?.(pick.token) ?? '');
    if (this.params.logprobs) this.held.push({ entry: pick, start: this.decoded, end: this.decoded + piece.length });
    this.decoded += piece.length;
    const out = this.stop.push(piece);
    this.emitted += out.text.length;
    const delta: GenerateDelta = { text: out.text, tokens: [pick.token] };
    if (this.params.logprobs) delta.logprobs = this.releaseLogprobs(out.stopped);
    if (out.stopped) this.finish = 'stop';
    else if (this.generated.length >= this.maxTokens) this.finish = 'length';
    return delta;
  }

  /** Ends the completion (as `reason` unless it already ended); returns held-back text and logprobs, if any. */
  close(reason: FinishReason = 'length'): GenerateDelta | undefined {
    this.finish ??= reason;
    if (this.stop.done) return undefined;
    const flushed = this.detok.flush();
    this.decoded += flushed.length;
    const rest = this.stop.push(flushed);
    if (rest.stopped) this.finish = 'stop';
    const tail = rest.text + (rest.stopped ? '' : this.stop.flush());
    this.emitted += tail.length;
    const logprobs = this.params.logprobs ? this.releaseLogprobs(rest.stopped, !rest.stopped) : [];
    if (!tail && logprobs.length === 0) return undefined;
    return logprobs.length > 0 ? { text: tail, tokens: [], logprobs } : { text: tail, tokens: [] };
  }

  /**
   * The logprobs of the tokens whose text is all out, in order. A token waits while its text is held
   * back (it could begin a stop string); when a stop string matches, the tokens that reach into it
   * are dropped with it, so logprobs never name the stop string's tokens.
   */
  private releaseLogprobs(stopped: boolean, all = false): TokenLogprobs[] {
    let k = all ? this.held.length : 0;
    while (k < this.held.length && this.held[k]!.end <= this.emitted) k++;
    const out = this.held.slice(0, k).map((h) => h.entry);
    this.held = stopped ? [] : this.held.slice(k);
    return out;
  }
}

/** What a Completion asks of the constraint on its output (response_format or tool calls). */
interface OutputConstraint {
  /** The tokens allowed next, with `left` tokens of budget. */
  allowed(left: number): Uint8Array;
  advance(id: number): void;
  /** Text a token adds besides its bytes (a control token that marks a tool call). */
  controlText?(id: number): string;
}

function outputConstraint(tokenizer: GenerationTokenizer, params: RequestParams, maxTokens: number): OutputConstraint | undefined {
  const { responseFormat, triggeredFormat } = params;
  if (responseFormat === undefined && triggeredFormat === undefined) return undefined;
  if (responseFormat !== undefined && triggeredFormat !== undefined) {
    throw new RequestFaultError('responseFormat and triggeredFormat cannot be combined', 'invalid_value', 'response_format');
  }
  if (tokenizer.vocabSize === undefined || tokenizer.tokenToPiece === undefined) throw new RangeError('constrained decoding needs a tokenizer that reports its token bytes');
  // The tokenizer itself, so its token bytes are computed once for every request.
  const vocabulary = tokenizer as VocabularyTokenizer;
  return responseFormat !== undefined ? new JsonConstraint(responseFormat, vocabulary, maxTokens) : new TriggeredConstraint(triggeredFormat!, vocabulary);
}
