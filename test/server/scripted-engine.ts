// An engine stand-in that answers every request with the same scripted deltas (text pieces as a model
// would stream them), and keeps the parameters it was sent. For tests of how the server reads replies.
import type { GenerateCallOptions } from '../../src/engine/engine.js';
import type { EngineDelta, EngineFinishReason, EngineInfo, EngineStats, RequestParams } from '../../src/engine/engine-types.js';
import type { ServingEngine } from '../../src/server/engine-like.js';

export class ScriptedEngine implements ServingEngine {
  readonly info: EngineInfo;
  /** The parameters of each request, in order. */
  readonly requests: RequestParams[] = [];

  constructor(
    private readonly pieces: readonly string[],
    private readonly finish: EngineFinishReason = 'stop',
    info: Partial<EngineInfo> = {},
  ) {
    this.info = {
      modelPath: '', arch: 'llama', vocabSize: 512, maxContext: 256, maxSeqs: 4, maxBatchTokens: 64, kvManager: 'paged', scheduler: 'sarathi', backend: 'none', prefixCache: false, kvType: { k: 'f16', v: 'f16' }, loadMs: 0,
      ...info,
    };
  }

  generate(_input: unknown, params: RequestParams, _opts: GenerateCallOptions): AsyncIterator<EngineDelta> {
    this.requests.push(params);
    const deltas: EngineDelta[] = this.pieces.map((text, i) => ({ text, tokens: [i + 1] }));
    const n = this.pieces.length;
    deltas.push({ text: '', tokens: [], finish_reason: this.finish, usage: { prompt_tokens: 3, completion_tokens: n, total_tokens: 3 + n, prompt_tokens_details: { cached_tokens: 0 } } });
    let at = 0;
    return { next: async () => (at < deltas.length ? { done: false, value: deltas[at++]! } : { done: true, value: undefined }) };
  }

  async stats(): Promise<EngineStats> {
    throw new Error('not needed');
  }
}
