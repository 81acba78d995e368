// What the server needs of an engine: the real Engine, or a stand-in in tests that must control timing.
import type { BlockListener, BlockWatch } from '../engine/block-watchers.js';
import type { GenerateCallOptions } from '../engine/engine.js';
import type { EngineDelta, EngineInfo, EngineInput, EngineStats, RequestParams } from '../engine/engine-types.js';

export interface ServingEngine {
  readonly info: EngineInfo;
  generate(input: EngineInput, params: RequestParams, opts: GenerateCallOptions): AsyncIterator<EngineDelta>;
  stats(): Promise<EngineStats>;
  /** The prefix cache's block events (see Engine.watchBlocks); absent or undefined: no prefix cache. */
  watchBlocks?(listener: BlockListener, onEnd?: (e: Error) => void): Promise<BlockWatch | undefined>;
}
