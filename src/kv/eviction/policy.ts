// The shape every KV eviction policy shares: per sequence and per (layer, KV head), which position each cache
// row holds and the attention mass it collected, in; the rows to keep, out. Policies are plain functions
// (DESIGN §8.5), so the engine, tests and benches call them the same way.
import { KVError } from '../errors.js';

export type EvictionPolicyName = 'sinks' | 'h2o' | 'snapkv' | 'chunkkv' | 'tova' | 'pyramidkv';

export interface EvictionInput {
  layers: number;
  kvHeads: number;
  /** Rows each (layer, head) holds now. */
  rows: number;
  /** Rows to keep per (layer, head); pyramidkv: the mean over layers. */
  keep: number;
  /** The token position each row holds; rows are not in position order after earlier evictions. >= rows entries. */
  positions(layer: number, head: number): Int32Array;
  /** Attention mass the attention op added to each row, summed over the KV head's query heads. >= rows entries. */
  scores(layer: number, head: number): Float32Array;
  /** SnapKV, ChunkKV, PyramidKV: the observation window, the newest rows, always kept. Others ignore it. */
  window: number;
}

/**
 * Rows to keep: [layer][head] -> ascending row indices (exactly the count for that layer).
 * Read-only: a policy that keeps the same rows for several heads may return one array for all of them.
 */
export type KeepSets = Int32Array[][];

/** Knobs with the reference implementations' defaults; each policy reads only its own. */
export interface EvictionOptions {
  /** sinks: the attention-sink tokens kept at the start (StreamingLLM: 4). */
  sinks?: number;
  /** snapkv, pyramidkv: pooling of the window votes along position order (default 'max'). */
  pooling?: 'max' | 'avg';
  /** snapkv, pyramidkv: pooling kernel, odd (default 7). */
  kernel?: number;
  /** chunkkv: tokens per chunk (default 10). */
  chunk?: number;
  /** chunkkv: layers that share one selection (default 1 = none; 2 = layer 2k+1 reuses layer 2k's). */
  reuseLayers?: number;
  /** pyramidkv: the top layer's budget is b / beta (default 20). */
  beta?: number;
}

export type EvictionSelect = (input: EvictionInput, opts?: EvictionOptions) => KeepSets;

function invalid(message: string): KVError {
  return new KVError('ERR_KV_INVALID_ARGUMENT', message);
}

function count(name: string, value: number): void {
  if (!Number.isInteger(value) || value < 0) throw invalid(`eviction: ${name} must be a non-negative integer, got ${value}`);
}

/** Checks the counts every policy relies on; the per-head arrays are checked when read (rowArrays). */
export function checkInput(input: EvictionInput): void {
  count('layers', input.layers);
  count('kvHeads', input.kvHeads);
  count('rows', input.rows);
  count('keep', input.keep);
  count('window', input.window);
}

/** One (layer, head)'s arrays, checked to cover every row. */
export function rowPositions(input: EvictionInput, layer: number, head: number): Int32Array {
  const p = input.positions(layer, head);
  if (p.length < input.rows) throw invalid(`eviction: positions(${layer}, ${head}) has ${p.length} entries, fewer than ${input.rows} rows`);
  return p;
}

export function rowScores(input: EvictionInput, layer: number, head: number): Float32Array {
  const s = input.scores(layer, head);
  if (s.length < input.rows) throw invalid(`eviction: scores(${layer}, ${head}) has ${s.length} entries, fewer than ${input.rows} rows`);
  return s;
}

/** A positive integer option, or its default. */
export function intOption(name: string, value: number | undefined, fallback: number, min = 1): number {
  if (value === undefined) return fallback;
  if (!Number.isInteger(value) || value < min) throw invalid(`eviction: option ${name} must be an integer >= ${min}, got ${value}`);
  return value;
}

export { invalid as evictionArgumentError };
