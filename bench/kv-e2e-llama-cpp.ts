// llama.cpp's side of the end-to-end decode run, through node-llama-cpp: one context with a sequence per
// prompt and the KV cache types under test (experimentalKvCacheKeyType / ValueType). All prompts but
// their last token are evaluated first, concurrently; then every sequence evaluates its last prompt
// token and generates. node-llama-cpp gathers the tokens the sequences queued into one llama_decode;
// each decode here waits until every sequence has queued (see dispatchWaitMs), so that all sequences
// decode together in every step, as vserve's do.
import type { LlamaModel, Token } from 'node-llama-cpp';
import { llamaCppType } from './kv-format-variants.js';
import { contextFor, type DecodeRunSpec, type DecodeRunTimes } from './kv-e2e-run.js';

export interface LlamaCppDecodeOptions {
  /** Tokens per llama_decode while the prompts are evaluated. */
  batchSize: number;
  /** llama.cpp needs flash attention for a quantized V cache. */
  flashAttention: boolean | 'auto';
  /**
   * Most time a decode waits for every sequence to queue its next token (0: node-llama-cpp's default,
   * dispatch on the next event-loop turn). Each sequence samples on its own, on libuv's thread pool, so
   * with the default the sequences whose sampling ends late miss the step and need a llama_decode of
   * their own, which reads all the weights again.
   */
  dispatchWaitMs: number;
}

export async function llamaCppDecodeRun(model: LlamaModel, spec: DecodeRunSpec, opts: LlamaCppDecodeOptions): Promise<DecodeRunTimes> {
  // While generating, a decode goes out once every sequence has queued its next token (by the event-loop
  // turn after the last one asked, its token is queued) or when the wait is over.
  const n = spec.prompts.length;
  let generating = false;
  let queued = 0; // sequences that asked for a token no decode has taken yet
  const dispatchSchedule = (dispatch: () => void) => {
    const until = performance.now() + opts.dispatchWaitMs;
    const poll = () => {
      if (generating && queued < n && performance.now() < until) return void setImmediate(poll);
      setImmediate(() => {
        queued = 0;
        dispatch();
      });
    };
    poll();
  };
  const context = await model.createContext({
    contextSize: contextFor(spec),
    batchSize: opts.batchSize,
    sequences: spec.prompts.length,
    threads: { ideal: spec.threads, min: spec.threads },
    flashAttention: opts.flashAttention,
    ...(opts.dispatchWaitMs > 0 && n > 1 ? { batching: { dispatchSchedule } } : {}),
    experimentalKvCacheKeyType: llamaCppType(spec.type.k),
    experimentalKvCacheValueType: llamaCppType(spec.type.v),
  });
  try {
    const sequences = spec.prompts.map(() => context.getSequence());
    const startMs = performance.now();
    await Promise.all(sequences.map((s, i) => s.evaluateWithoutGeneratingNewTokens(spec.prompts[i]!.slice(0, -1) as Token[])));
    generating = true;
    queued = n;
    const times = await Promise.all(sequences.map(async (s, i) => {
      const t: number[] = [];
      for await (const _ of s.evaluate([spec.prompts[i]!.at(-1)!] as Token[], { temperature: 0, yieldEogToken: true })) {
        t.push(performance.now());
        if (t.length >= spec.decodeTokens) break;
        queued++; // the loop asks for the next token now
      }
      return t;
    }));
    return {
      startMs, times,
      details: { contextSizePerSequence: context.contextSize, batchSize: context.batchSize, flashAttention: String(context.flashAttention), dispatchWaitMs: opts.dispatchWaitMs, threads: spec.threads },
    };
  } finally {
    await context.dispose();
  }
}
