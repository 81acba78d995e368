// CacheBlend inside the engine: a request whose prompt carries documents (RAG chunks) takes each
// document's KV from the chunk store (src/kv/chunk-store.ts) instead of computing it, placed at the
// document's position with its keys re-rotated, and then recomputes only the share of document tokens whose
// keys deviate most from the reused ones (model/blend-selection.ts), so that the documents attend to what
// precedes them. Everything else of the prompt is computed as usual.
//
// A document the store lacks is computed first by a chunk job: an internal sequence whose prompt is the
// chunk's context then the document, which runs no sampling and leaves the document's rows in the store.
import type { ChunkRef } from '../kv/chunk-store.js';
import { ENGINE_DEFAULTS, type BLEND_CONTEXTS } from '../config/engine-config.js';
import { RequestFaultError } from './error-kind.js';
import type { RequestParams } from './completion.js';

/**
 * What a document's KV is computed after: 'prefix' = the prompt's tokens before its first document (the
 * system prompt, shared by the requests of one application, as APE does); 'bos' = the prompt's first token
 * only (the attention sink), so that a document's KV is the same whatever system prompt comes before it.
 */
export type BlendContext = (typeof BLEND_CONTEXTS)[number];

export interface BlendSettings {
  /** Share of document tokens recomputed when a request names none (CacheBlend's default 15%). */
  recompute: number;
  /** The layer whose key deviation picks the tokens recomputed in the layers after it (0-based). */
  layer: number;
  /** Gradual filtering: how many consecutive layers from `layer` on narrow the selection (1: one selection). */
  stages: number;
  context: BlendContext;
}

/** The engine's defaults, from its configuration schema. */
export const DEFAULT_BLEND: BlendSettings = {
  recompute: ENGINE_DEFAULTS.blendRecompute, layer: ENGINE_DEFAULTS.blendLayer, stages: ENGINE_DEFAULTS.blendStages, context: ENGINE_DEFAULTS.blendContext,
};

/** One document of a sequence: where it lies in the prompt, and the chunk it is stored as. */
export interface BlendDocument {
  start: number;
  end: number;
  chunk: ChunkRef;
  /** The chunk's block keys in the store (ChunkStore.keys). */
  keys: string[];
}

/** A sequence's blend: its documents in prompt order and the share of their tokens it recomputes. */
export interface SequenceBlend {
  readonly documents: readonly BlendDocument[];
  readonly recompute: number;
}

/** A chunk job: the internal sequence that computes a document's KV for the store. */
export interface ChunkJob {
  readonly chunk: ChunkRef;
  readonly keys: string[];
}

const fault = (message: string, param: string) => new RequestFaultError(message, 'invalid_value', param);

/**
 * The request's documents and recompute share, checked against its prompt (the ranges come from the
 * prompt encoder; a library caller may pass its own, so nothing is trusted); undefined without documents.
 */
export function resolveBlend(
  params: RequestParams,
  prompt: readonly number[],
  settings: BlendSettings,
  keysOf: (chunk: ChunkRef) => string[],
): SequenceBlend | undefined {
  const blend = params.blend;
  if (blend !== undefined && typeof blend !== 'boolean' && (typeof blend !== 'object' || blend === null)) {
    throw fault('blend must be true, false or { recompute: number }', 'blend');
  }
  const recompute = typeof blend === 'object' && blend.recompute !== undefined ? blend.recompute : settings.recompute;
  if (!(typeof recompute === 'number' && recompute >= 0 && recompute <= 1)) throw fault(`blend.recompute must be a number from 0 to 1, got ${JSON.stringify(recompute)}`, 'blend');
  const ranges = params.documents ?? [];
  if (blend === false || ranges.length === 0) return undefined;
  if (!Array.isArray(ranges)) throw fault('documents must be an array of [start, end) token ranges', 'documents');
  let last = 0;
  const first = Array.isArray(ranges[0]) ? (ranges[0] as readonly number[])[0]! : 0;
  // Every document of the prompt is computed after the same context.
  const context = settings.context === 'bos' ? prompt.slice(0, 1) : prompt.slice(0, first);
  const documents = ranges.map((r, i): BlendDocument => {
    const [start, end] = Array.isArray(r) ? r : [];
    if (!(Number.isInteger(start) && Number.isInteger(end) && start! >= last && end! > start! && end! < prompt.length && start! > 0)) {
      throw fault(`document ${i}'s token range ${JSON.stringify(r)} is not inside the prompt after the one before it (documents must be sorted, non-empty, after the first token and before the last)`, 'documents');
    }
    last = end!;
    const chunk: ChunkRef = { tokens: prompt.slice(start, end), context, salt: params.cacheSalt ?? '' };
    return { start: start!, end: end!, chunk, keys: keysOf(chunk) };
  });
  return { documents, recompute };
}
