// PyramidKV: attention spreads wide in the lower layers and narrows higher up (pyramidal information
// funnelling), so lower layers get more of the budget and higher ones less; each layer selects as SnapKV does.
import { checkInput, evictionArgumentError, type EvictionInput, type EvictionOptions, type KeepSets } from './policy.js';
import { allRows, uniformSets } from './select.js';
import { selectSnapLayer, SnapScratch, snapConfig } from './snapkv.js';

/** PyramidKV's reference: the top layer keeps 1/20 of the mean budget beyond the window. */
export const PYRAMID_BETA = 20;

/**
 * Rows each layer keeps, window included. With b = keep - window, the budget beyond the window falls
 * linearly from 2b - b/beta at layer 0 to b/beta at the top, so its mean is b; rounded by largest remainder
 * so the total is exactly layers * keep (and the counts still never rise with depth). `rows`, when given,
 * caps layer 0 at rows and raises the top to keep the mean, as the reference does when the prompt is short.
 */
export function pyramidBudgets(layers: number, keep: number, window: number, beta = PYRAMID_BETA, rows = Infinity): number[] {
  for (const [name, v] of [['layers', layers], ['keep', keep], ['window', window]] as const) {
    if (!Number.isInteger(v) || v < 0) throw evictionArgumentError(`eviction: ${name} must be a non-negative integer, got ${v}`);
  }
  if (!(beta >= 1)) throw evictionArgumentError(`eviction: beta must be >= 1, got ${beta}`);
  const b = keep - window;
  if (layers <= 1 || b <= 0) return new Array<number>(layers).fill(keep);
  let min = b / beta;
  let max = 2 * b - min;
  if (max > rows - window) {
    max = rows - window;
    min = 2 * b - max;
  }
  const step = (max - min) / (layers - 1);
  const floors = new Array<number>(layers);
  const fracs = new Array<number>(layers);
  let total = 0;
  for (let l = 0; l < layers; l++) {
    const v = max - l * step;
    floors[l] = Math.floor(v);
    fracs[l] = v - floors[l]!;
    total += floors[l]!;
  }
  // the exact total: the largest fractions round up, the lower layer first on ties
  const byFrac = Array.from({ length: layers }, (_, l) => l).sort((a, c) => fracs[c]! - fracs[a]! || a - c);
  for (let i = 0; i < layers * b - total; i++) floors[byFrac[i]!]! += 1;
  return floors.map((f) => f + window);
}

/** SnapKV's selection (same window, votes and pooling) with pyramidBudgets' count per layer. */
export function selectPyramidKV(input: EvictionInput, opts: EvictionOptions = {}): KeepSets {
  checkInput(input);
  const cfg = snapConfig(opts);
  const { layers, kvHeads, rows, keep, window } = input;
  if (keep >= rows) return uniformSets(layers, kvHeads, allRows(rows));
  const budgets = pyramidBudgets(layers, keep, window, opts.beta ?? PYRAMID_BETA, rows);
  const scratch = new SnapScratch(rows);
  const out: KeepSets = [];
  for (let l = 0; l < layers; l++) out.push(selectSnapLayer(input, l, budgets[l]!, cfg, scratch));
  return out;
}
