// Single-sequence generation: the simplest complete path from a prompt to streamed text (prefill in
// chunks, then decode token by token). The serving engine batches many of these; this loop is what the
// CLI's `run` uses and what the engine's outputs are checked against.
import type { ContiguousKV } from '../backend/backend.js';
import { ArrayKV } from '../backend/array-kv.js';
import type { LlamaModel } from '../model/llama.js';
import { Sampler, type SamplingParams, type TokenLogprob } from './sampler.js';
import { StopMatcher } from './stop-matcher.js';

/** What generation needs of a tokenizer. */
export interface GenerationTokenizer {
  encode(text: string, opts?: { addSpecial?: boolean; parseSpecial?: boolean }): number[];
  isEndOfGeneration(id: number): boolean;
  /** A fresh incremental decoder: push(id) returns complete text, flush() the rest. */
  streamDecoder(): { push(id: number): string; flush(): string };
}

export interface GenerateOptions extends SamplingParams {
  /** Tokens to generate at most (default: until the context is full). */
  maxTokens?: number;
  stop?: string[];
  /** Prompt tokens per forward pass during prefill (default 512). */
  prefillChunk?: number;
  /** Reuse a KV cache (slot 0 is used); by default one is made for this call. */
  kv?: ContiguousKV;
  /** Return the chosen token's logprob and the top-n alternatives with each delta. */
  logprobs?: boolean;
}

export interface GenerateDelta {
  text: string;
  tokens: number[];
  logprobs?: { token: number; logprob: number; top: TokenLogprob[] }[];
}

export type FinishReason = 'stop' | 'length';

export interface GenerateSummary {
  finishReason: FinishReason;
  promptTokens: number;
  completionTokens: number;
  /** Milliseconds from the call to the first generated token. */
  ttftMs: number;
  prefillTokS: number;
  decodeTokS: number;
}

export class ContextLengthError extends RangeError {
  override name = 'ContextLengthError';
}

/**
 * Generates a continuation of `prompt` (text, or token ids used as they are). Yields deltas as text
 * becomes complete; returns the summary.
 */
export function* generate(
  model: LlamaModel,
  tokenizer: GenerationTokenizer,
  prompt: string | number[],
  opts: GenerateOptions = {},
): Generator<GenerateDelta, GenerateSummary> {
  const t0 = performance.now();
  const c = model.config;
  const promptIds = typeof prompt === 'string' ? tokenizer.encode(prompt, { addSpecial: true }) : prompt;
  if (promptIds.length === 0) throw new RangeError('the prompt is empty (no tokens)');
  const kv = opts.kv ?? new ArrayKV(c.nLayers, 1, c.contextLength, c.nKVHeads, c.headDim);
  const ctx = Math.min(c.contextLength, kv.maxContext);
  if (promptIds.length >= ctx) {
    throw new ContextLengthError(`the prompt has ${promptIds.length} tokens; the context holds ${ctx} (prompt plus at least one generated token)`);
  }
  const maxTokens = Math.min(opts.maxTokens ?? Infinity, ctx - promptIds.length);
  const sampler = new Sampler({ ...opts, topLogprobs: opts.logprobs ? (opts.topLogprobs ?? 0) : 0 });
  const stop = new StopMatcher(opts.stop ?? []);
  const detok = tokenizer.streamDecoder();
  const chunk = opts.prefillChunk ?? 512;

  // Prefill: the prompt in chunks; logits only for the last prompt token.
  let logits: Float32Array | undefined;
  for (let start = 0; start < promptIds.length; start += chunk) {
    const ids = promptIds.slice(start, start + chunk);
    const isLast = start + ids.length === promptIds.length;
    logits = model.forward(
      {
        tokens: Int32Array.from(ids),
        positions: Int32Array.from(ids, (_, i) => start + i),
        slots: new Int32Array(ids.length),
        logitRows: isLast ? Int32Array.of(ids.length - 1) : new Int32Array(0),
      },
      kv,
    );
  }
  const tPrefill = performance.now();

  const generated: number[] = [];
  let finishReason: FinishReason = 'length';
  let tFirst = 0;
  while (generated.length < maxTokens) {
    const pick = sampler.sample(logits!, generated);
    if (generated.length === 0) tFirst = performance.now();
    if (tokenizer.isEndOfGeneration(pick.token)) { finishReason = 'stop'; break; }
    generated.push(pick.token);
    const out = stop.push(detok.push(pick.token));
    const delta: GenerateDelta = { text: out.text, tokens: [pick.token] };
    if (opts.logprobs) delta.logprobs = [pick];
    yield delta;
    if (out.stopped) { finishReason = 'stop'; break; }
    if (generated.length >= maxTokens) break;
    const pos = promptIds.length + generated.length - 1;
    logits = model.forward({ tokens: Int32Array.of(pick.token), positions: Int32Array.of(pos), slots: Int32Array.of(0), logitRows: Int32Array.of(0) }, kv);
  }
  if (!stop.done) {
    const rest = stop.push(detok.flush());
    const tail = rest.text + (rest.stopped ? '' : stop.flush());
    if (rest.stopped) finishReason = 'stop';
    if (tail) yield { text: tail, tokens: [] };
  }
  const tEnd = performance.now();
  const decodeSteps = Math.max(0, generated.length - 1);
  return {
    finishReason,
    promptTokens: promptIds.length,
    completionTokens: generated.length,
    ttftMs: (tFirst || tEnd) - t0,
    prefillTokS: promptIds.length / ((tPrefill - t0) / 1000),
    decodeTokS: decodeSteps > 0 ? decodeSteps / ((tEnd - (tFirst || tEnd)) / 1000) : 0,
  };
}
