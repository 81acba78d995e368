// Mixture-of-experts hyperparameters (`<arch>.expert_*`) and a layer's experts under llama.cpp's tensor
// names, shared by the architectures that route tokens to experts (Mixtral-style llama, Qwen2-MoE,
// Qwen3-MoE). Variants vserve does not run (expert groups, per-layer counts) are refused by name.
import { type ExpertWeights, MoEFeedForward, type SharedExpert } from './blocks/moe-feed-forward.js';
import { type MetadataReader, type ModelConfig, ModelConfigError } from './model-config.js';
import type { WeightLoader } from './weight-loader.js';

export interface ExpertConfig {
  /** Experts per layer. */
  count: number;
  /** Experts each token is routed to. */
  used: number;
  /** Hidden width of each expert's MLP. */
  width: number;
  /** Renormalise the chosen experts' probabilities to sum to 1. */
  normalize: boolean;
}

/** A scalar `<arch>.key`; llama.cpp also accepts per-layer arrays for some, which vserve does not run. */
function scalarSize(m: MetadataReader, key: string, fallback?: number): number {
  const v = m.file.get(`${m.arch}.${key}`);
  if (v !== undefined && typeof v === 'object') throw new ModelConfigError(`${m.where}: ${m.arch}.${key} is a per-layer array; vserve runs only one value for every layer`);
  return m.size(key, fallback);
}

/**
 * The file's expert settings, or undefined when `<arch>.expert_count` is absent or 0 (a dense model).
 * `width(used)` gives the expert width where the architecture derives it (it may read metadata).
 */
export function readExpertConfig(m: MetadataReader, width: (used: number) => number, normalize: boolean): ExpertConfig | undefined {
  const count = m.has('expert_count') ? m.number('expert_count') : 0;
  if (count === 0) return undefined;
  if (!(Number.isInteger(count) && count > 0 && count <= 4096)) throw new ModelConfigError(`${m.where}: ${m.arch}.expert_count = ${count} is not a sensible expert count`);
  const used = scalarSize(m, 'expert_used_count');
  if (used > count) throw new ModelConfigError(`${m.where}: ${m.arch}.expert_used_count ${used} exceeds expert_count ${count}`);
  const groups = m.has('expert_group_count') ? m.number('expert_group_count') : 0;
  if (groups > 1) throw new ModelConfigError(`${m.where}: ${m.arch}.expert_group_count = ${groups}: routing by expert groups is not supported`);
  return { count, used, width: width(used), normalize };
}

/** `<arch>.expert_feed_forward_length`, else feed_forward_length / expert_used_count (llama.cpp's default). */
export function expertWidthOf(m: MetadataReader, ffnDim: number): (used: number) => number {
  return (used) => (m.has('expert_feed_forward_length') ? scalarSize(m, 'expert_feed_forward_length') : Math.floor(ffnDim / used));
}

/** Layer l's router and routed experts (3-D `ffn_{gate,up,down}_exps` tensors), plus an optional shared expert. */
export function loadMoEFeedForward(w: WeightLoader, c: ModelConfig, x: ExpertConfig, l: number, shared?: SharedExpert): MoEFeedForward {
  const p = `blk.${l}.`;
  if (!w.has(`${p}ffn_gate_exps.weight`) && w.has(`${p}ffn_up_exps.weight`)) {
    throw new ModelConfigError(`${w.where}: layer ${l} has experts without gate projections (ffn_gate_exps), which vserve does not run`);
  }
  const gates = w.experts(`${p}ffn_gate_exps.weight`, c.dim, x.width, x.count);
  const ups = w.experts(`${p}ffn_up_exps.weight`, c.dim, x.width, x.count);
  const downs = w.experts(`${p}ffn_down_exps.weight`, x.width, c.dim, x.count);
  const experts: ExpertWeights[] = gates.map((gate, e) => ({ gate, up: ups[e]!, down: downs[e]! }));
  return new MoEFeedForward({ router: w.matrix(`${p}ffn_gate_inp.weight`, c.dim, x.count), experts, nUsed: x.used, normalize: x.normalize, shared });
}
