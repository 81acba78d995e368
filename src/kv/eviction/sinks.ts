// StreamingLLM: the first tokens soak up attention whatever they say (attention sinks), so keeping them plus a
// window of the newest tokens bounds memory without the collapse a plain window shows. Scores are unused.
import { checkInput, intOption, rowPositions, type EvictionInput, type EvictionOptions, type KeepSets } from './policy.js';
import { allRows, ascendingSet, positionKeys, selectBest, uniformSets } from './select.js';

/** StreamingLLM keeps 4 sink tokens. */
export const SINK_TOKENS = 4;

/**
 * The `sinks` smallest positions plus the newest keep - sinks; the same rows for every (layer, head), read from
 * layer 0 head 0 (under this policy every head evicts the same rows, so rows hold the same positions).
 */
export function selectSinks(input: EvictionInput, opts: EvictionOptions = {}): KeepSets {
  checkInput(input);
  const { layers, kvHeads, rows, keep } = input;
  if (keep >= rows) return uniformSets(layers, kvHeads, allRows(rows));
  const sinks = Math.min(intOption('sinks', opts.sinks, SINK_TOKENS, 0), keep);
  const pos = rowPositions(input, 0, 0);
  const cand = allRows(rows);
  // newest first: key = position; the rest, oldest first: key = -position
  const key = new Float64Array(rows);
  selectBest(cand, 0, rows, keep - sinks, positionKeys(pos, rows, key), pos);
  selectBest(cand, keep - sinks, rows, sinks, positionKeys(pos, rows, key, -1), pos);
  return uniformSets(layers, kvHeads, ascendingSet(rows, cand, 0, keep));
}
