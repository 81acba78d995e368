// Single-sequence generation: the simplest complete path from a prompt to streamed text (prefill in
// chunks, then decode token by token). The serving engine batches many of these; this loop is what the
// CLI's `run` uses and what the engine's outputs are checked against.
import { forwardInSlotChunks } from './forward-in-slot-chunks.js';
import type { ContiguousKV } from '../backend/backend.js';
import { ArrayKV } from '../backend/array-kv.js';
import type { TransformerModel } from '../model/transformer.js';
import { StreamingDetokenizer } from '../model/tokenizer/streaming-detokenizer.js';
import type { Tokenizer } from '../model/tokenizer/tokenizer.js';
import { Completion, completionBudget, type FinishReason, type GenerateDelta, type GenerationTokenizer, type RequestParams } from './completion.js';

export { ContextLengthError, type FinishReason, type GenerateDelta, type GenerationTokenizer } from './completion.js';

export interface GenerateOptions extends RequestParams {
  /** Prompt tokens per forward pass during prefill (default 512). */
  prefillChunk?: number;
  /** Reuse a KV cache (slot 0 is used); by default one is made for this call. */
  kv?: ContiguousKV;
}

export interface GenerateSummary {
  finishReason: FinishReason;
  promptTokens: number;
  completionTokens: number;
  /** Milliseconds from the call to the first generated token. */
  ttftMs: number;
  prefillTokS: number;
  decodeTokS: number;
}

/**
 * Generates a continuation of `prompt` (text, or token ids used as they are). Yields deltas as text
 * becomes complete; returns the summary.
 */
export function* generate(
  model: TransformerModel,
  tokenizer: Tokenizer,
  prompt: string | number[],
  opts: GenerateOptions = {},
): Generator<GenerateDelta, GenerateSummary> {
  const t0 = performance.now();
  const c = model.config;
  const promptIds = typeof prompt === 'string' ? tokenizer.encode(prompt, { addSpecial: true }) : prompt;
  const kv = opts.kv ?? new ArrayKV(c.nLayers, 1, c.contextLength, c.nKVHeads, c.headDim);
  const maxTokens = completionBudget(promptIds.length, Math.min(c.contextLength, kv.maxContext), opts.maxTokens);
  const completion = new Completion(tokenizer, opts, maxTokens);
  const chunk = opts.prefillChunk ?? 512;

  // Prefill: the prompt in chunks; logits only for the last prompt token.
  let logits: Float32Array | undefined;
  for (let start = 0; start < promptIds.length && maxTokens > 0; start += chunk) {
    const ids = promptIds.slice(start, start + chunk);
    const isLast = start + ids.length === promptIds.length;
    logits = forwardInSlotChunks(
      model,
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

  const generated = completion.generated;
  let tFirst = 0;
  while (maxTokens > 0) {
    const delta = completion.accept(logits!);
    tFirst ||= performance.now();
    if (delta) yield delta;
    if (completion.finishReason) break;
    const pos = promptIds.length + generated.length - 1;
    logits = model.forward({ tokens: Int32Array.of(generated.at(-1)!), positions: Int32Array.of(pos), slots: Int32Array.of(0), logitRows: Int32Array.of(0) }, kv);
  }
  const tail = completion.close();
  if (tail) yield tail;
  const tEnd = performance.now();
  const decodeSteps = Math.max(0, generated.length - 1);
  return {
    finishReason: completion.finishReason!,
    promptTokens: promptIds.length,
    completionTokens: generated.length,
    ttftMs: (tFirst || tEnd) - t0,
    prefillTokS: promptIds.length / ((tPrefill - t0) / 1000),
    decodeTokS: decodeSteps > 0 ? decodeSteps / ((tEnd - (tFirst || tEnd)) / 1000) : 0,
  };
}
