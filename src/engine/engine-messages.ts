// Messages between the Engine (main thread) and its worker. They stay small: token ids and text, never
// logits or activations.
import type { BlockEvents, BlockSnapshot } from './block-events.js';
import type { RequestParams } from './completion.js';
import type { EngineEvent } from './engine-core.js';
import type { ErrorDescription } from './error-kind.js';
import type { EngineInfo, EngineInput, EngineOptions, EngineStats } from './engine-types.js';

/** Passed as the worker's workerData. */
export interface WorkerInit {
  modelPath: string;
  options: EngineOptions;
}

export type ToWorker =
  | { type: 'submit'; id: number; input: EngineInput; params: RequestParams }
  | { type: 'abort'; id: number }
  | { type: 'stats'; ticket: number }
  /** The prefix cache's keys now, after every block event before them. */
  | { type: 'blocks-snapshot'; ticket: number }
  | { type: 'close' };

export type FromWorker =
  | { type: 'load-progress'; done: number; total: number }
  | { type: 'ready'; info: EngineInfo }
  | { type: 'load-error'; error: ErrorDescription }
  | { type: 'events'; events: EngineEvent[] }
  | { type: 'stats'; ticket: number; stats: EngineStats }
  | ({ type: 'blocks' } & BlockEvents)
  /** null: the engine runs without a prefix cache. */
  | { type: 'blocks-snapshot'; ticket: number; snapshot: BlockSnapshot | null }
  | { type: 'closed' };
