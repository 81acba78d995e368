// The llama.cpp serving peer of the prefix-cache benchmark: one node-llama-cpp context with a sequence
// per user, the requests driven concurrently so that llama.cpp evaluates them in shared batches
// (node-llama-cpp gathers the tokens all sequences queued in one cycle into one llama_decode).
// Every sequence computes its whole prompt: node-llama-cpp has no public way to share KV between the
// sequences of a context (its internal _copyStateFromOtherSequence copies a sequence's cells, which
// saves compute but not memory, and is not used here).
import type { LlamaModel, Token } from 'node-llama-cpp';
import type { BenchRequest } from './engine-workload.js';
import { TokenClock, sleepUntil } from './token-clock.js';

export interface LlamaCppServingConfig {
  threads: number;
  /** Tokens per llama_decode batch (node-llama-cpp's batchSize). */
  batchSize: number;
  /** Context per sequence (node-llama-cpp gives each of the `sequences` its own contextSize of cells). */
  contextSize: number;
}

export interface LlamaCppRun {
  clocks: TokenClock[];
  /** What node-llama-cpp actually created (contextSize is rounded up to 256). */
  contextSize: number;
  batchSize: number;
  /** Process RSS after the context was created less before, and the peak during the run less after creation. */
  contextRssBytes: number;
  runRssDeltaBytes: number;
}

/** Replays `requests` at their arrival times on one context with a sequence per request. */
export async function runLlamaCppServing(model: LlamaModel, requests: readonly BenchRequest[], cfg: LlamaCppServingConfig): Promise<LlamaCppRun> {
  const rssBefore = process.memoryUsage.rss();
  const context = await model.createContext({
    contextSize: cfg.contextSize,
    batchSize: cfg.batchSize,
    sequences: requests.length,
    threads: { ideal: cfg.threads, min: cfg.threads },
  });
  try {
    const rss0 = process.memoryUsage.rss();
    let rssPeak = rss0;
    const sampler = setInterval(() => (rssPeak = Math.max(rssPeak, process.memoryUsage.rss())), 50);
    const sequences = requests.map(() => context.getSequence());
    const t0 = performance.now();
    const clocks = await Promise.all(requests.map(async (r, i) => {
      await sleepUntil(t0 + r.at * 1000);
      const clock = new TokenClock();
      for await (const _ of sequences[i]!.evaluate(r.prompt as Token[], { temperature: 0 })) {
        clock.tick();
        if (clock.tokens >= r.maxTokens) break;
      }
      return clock;
    }));
    clearInterval(sampler);
    return { clocks, contextSize: context.contextSize, batchSize: context.batchSize, contextRssBytes: rss0 - rssBefore, runRssDeltaBytes: rssPeak - rss0 };
  } finally {
    await context.dispose();
  }
}
