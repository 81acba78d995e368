// An engine stand-in whose requests each produce one token and then run until aborted: a stream that
// outlives any drain timeout, with no model and nothing timed.
import type { GenerateCallOptions } from '../../src/engine/engine.js';
import type { EngineDelta, EngineStats } from '../../src/engine/engine-types.js';
import type { ServingEngine } from '../../src/server/engine-like.js';

const usage = { prompt_tokens: 1, completion_tokens: 1, total_tokens: 2, prompt_tokens_details: { cached_tokens: 0 } };

export class EndlessEngine implements ServingEngine {
  readonly info = {
    modelPath: '', arch: 'llama', vocabSize: 512, maxContext: 64, maxSeqs: 4, maxBatchTokens: 64, kvManager: 'paged' as const, scheduler: 'sarathi' as const, backend: 'none', prefixCache: false, kvType: { k: 'f16' as const, v: 'f16' as const }, loadMs: 0,
  };
  /** Requests started and requests that ended by abort. */
  started = 0;
  aborted = 0;

  generate(_input: unknown, _params: unknown, opts: GenerateCallOptions): AsyncIterator<EngineDelta> {
    this.started++;
    let sent = 0;
    const abortedNow = new Promise<void>((resolve) => {
      if (opts.signal?.aborted) resolve();
      opts.signal?.addEventListener('abort', () => resolve(), { once: true });
    });
    return {
      next: async () => {
        sent++;
        if (sent === 1) return { done: false, value: { text: 'Once', tokens: [1] } };
        if (sent === 2) {
          await abortedNow;
          this.aborted++;
          return { done: false, value: { text: '', tokens: [], finish_reason: 'abort', usage } };
        }
        return { done: true, value: undefined };
      },
    };
  }

  async stats(): Promise<EngineStats> {
    throw new Error('not needed');
  }
}
