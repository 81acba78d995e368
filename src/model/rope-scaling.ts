// How a file stretches RoPE past the context it was trained on, read the way llama.cpp reads it:
// linear position scaling, YaRN (per-dimension blend of scaled and unscaled frequencies plus an
// attention factor), LongRoPE (Phi-3: per-dimension factors, one set for short contexts and one for
// long), and per-dimension factors from a rope_freqs tensor (Llama 3.1+). Everything resolves to the
// backend's RoPE options: a position scale, per-pair frequency divisors and a cos/sin multiplier.
import type { MetadataReader } from './model-config.js';
import { ModelConfigError } from './model-config.js';
import type { WeightLoader } from './weight-loader.js';

export type RopeScalingType = 'none' | 'linear' | 'yarn' | 'longrope';

export interface RopeScaling {
  /** rope.scaling.type; absent reads as 'linear' (a no-op without a factor), as in llama.cpp. */
  type: RopeScalingType;
  /** rope.scaling.factor (or the older rope.scale_linear); 1 when absent. */
  factor: number;
  /** rope.scaling.original_context_length: the context before scaling (default: context_length). */
  originalContext: number;
  /** rope.scaling.attn_factor: multiplies cos and sin (LongRoPE's and YaRN's magnitude scaling). */
  attnFactor: number;
  /** YaRN's ramp: dimensions rotating fewer than betaSlow times over the original context are fully scaled, more than betaFast not at all. */
  yarnBetaFast: number;
  yarnBetaSlow: number;
  /**
   * rope.scaling.yarn_log_multiplier (mscale_all_dim), read only by architectures whose llama.cpp
   * loader reads it (0 otherwise): YaRN's magnitude becomes mscale(1) / mscale(this) instead of mscale(1).
   */
  yarnLogMultiplier: number;
}

/** Which optional YaRN keys an architecture reads (llama.cpp ignores them for the others). */
export interface RopeScalingKeys {
  yarnLogMultiplier?: boolean;
}

/** The RoPE options one model runs with (AttentionOptions' rope fields). */
export interface RopeOptions {
  ropeFreqScale: number;
  ropeFreqFactors?: Float32Array;
  ropeAttnFactor?: number;
  /** YaRN's per-pair blend of the scaled and unscaled angles (RopeParams.yarnRamp). */
  ropeYarnRamp?: Float32Array;
}

const TYPES: readonly RopeScalingType[] = ['none', 'linear', 'yarn', 'longrope'];

export function readRopeScaling(m: MetadataReader, contextLength: number, keys: RopeScalingKeys = {}): RopeScaling {
  const raw = m.string('rope.scaling.type') ?? 'linear';
  const type = TYPES.find((t) => t === raw);
  if (!type) throw new ModelConfigError(`${m.where}: rope.scaling.type "${raw}" is not supported (supported: ${TYPES.join(', ')})`);
  const given = m.has('rope.scaling.factor') ? m.number('rope.scaling.factor') : m.has('rope.scale_linear') ? m.number('rope.scale_linear') : 0;
  if (!(given >= 0)) throw new ModelConfigError(`${m.where}: rope.scaling.factor ${given} is negative`);
  const factor = type === 'none' || given === 0 ? 1 : given;
  const attnFactor = m.number('rope.scaling.attn_factor', 1);
  if (!(attnFactor > 0)) throw new ModelConfigError(`${m.where}: rope.scaling.attn_factor ${attnFactor} must be positive`);
  // llama.cpp fixes these YaRN settings for the architectures here; a file asking for others would
  // run differently there, so it is refused rather than guessed at.
  const fixed = [['yarn_ext_factor', 1], ['yarn_attn_factor', 1], ...(keys.yarnLogMultiplier ? [] : [['yarn_log_multiplier', 0]])] as const;
  for (const [key, runs] of fixed) {
    if (m.has(`rope.scaling.${key}`) && m.number(`rope.scaling.${key}`) !== runs) {
      throw new ModelConfigError(`${m.where}: rope.scaling.${key} = ${m.number(`rope.scaling.${key}`)} is not supported (only ${runs})`);
    }
  }
  return {
    type,
    factor,
    originalContext: m.size('rope.scaling.original_context_length', contextLength),
    attnFactor,
    yarnBetaFast: m.number('rope.scaling.yarn_beta_fast', 32),
    yarnBetaSlow: m.number('rope.scaling.yarn_beta_slow', 1),
    yarnLogMultiplier: keys.yarnLogMultiplier ? m.number('rope.scaling.yarn_log_multiplier', 0) : 0,
  };
}

/** The position scale linear and YaRN scaling apply (1 / factor); the RoPE of the unscaled kinds. */
export function ropeFreqScaleOf(s: RopeScaling): number {
  return s.type === 'none' ? 1 : 1 / s.factor;
}

interface RopeShape {
  ropeDim: number;
  ropeFreqBase: number;
  ropeScaling: RopeScaling;
}

/**
 * Loads the file's per-dimension factors and resolves the scaling into RoPE options for a context
 * of `contextSize` tokens (LongRoPE picks its long factors only above the original context, as
 * llama.cpp does for the context it is given).
 */
export function loadRopeOptions(w: WeightLoader, c: RopeShape, contextSize: number): RopeOptions {
  const s = c.ropeScaling;
  const half = c.ropeDim / 2;
  // Phi-3 files carry LongRoPE factors without saying rope.scaling.type = longrope.
  const long = w.optionalVector('rope_factors_long.weight', half);
  const short = w.optionalVector('rope_factors_short.weight', half);
  if (!long !== !short) throw new ModelConfigError(`${w.where}: LongRoPE needs both rope_factors_long and rope_factors_short, the file has one`);
  const factors = w.optionalVector('rope_freqs.weight', half) ?? (contextSize > s.originalContext ? long : short);
  if (factors && factors.some((f) => !(f > 0))) throw new ModelConfigError(`${w.where}: RoPE frequency factors must be positive`);
  if (s.type !== 'yarn') return { ropeFreqScale: ropeFreqScaleOf(s), ropeFreqFactors: factors, ropeAttnFactor: s.attnFactor };
  return { ropeFreqScale: 1 / s.factor, ropeFreqFactors: factors, ropeYarnRamp: yarnRamp(c), ropeAttnFactor: s.attnFactor * yarnMagnitude(s) };
}

/**
 * YaRN's cos/sin multiplier: mscale(1), or mscale(1) / mscale(yarn_log_multiplier) where the file gives
 * one (1 when it is 1, as in Ministral 3), with mscale(m) = 1 + 0.1 m ln(factor) for factors above 1.
 */
export function yarnMagnitude(s: RopeScaling): number {
  const mscale = (m: number) => (s.factor <= 1 ? 1 : 1 + 0.1 * m * Math.log(s.factor));
  return s.yarnLogMultiplier !== 0 ? mscale(1) / mscale(s.yarnLogMultiplier) : mscale(1);
}

/**
 * YaRN's ramp per rotated pair: 1 (the unscaled angle θᵢ, extrapolated) for the dimensions that turn more
 * than betaFast times across the original context, 0 (scale·θᵢ, interpolated) for those that turn fewer
 * than betaSlow times, linear between; in f32 as llama.cpp computes it, so the angles blend to its bits.
 */
function yarnRamp(c: RopeShape): Float32Array {
  const s = c.ropeScaling;
  const f32 = Math.fround;
  const d = c.ropeDim;
  const corrDim = (turns: number) => (d * Math.log(s.originalContext / (turns * 2 * Math.PI))) / (2 * Math.log(c.ropeFreqBase));
  const low = Math.max(0, Math.floor(corrDim(s.yarnBetaFast)));
  const high = Math.min(d - 1, Math.ceil(corrDim(s.yarnBetaSlow)));
  return Float32Array.from({ length: d / 2 }, (_, i) => f32(1 - Math.min(1, Math.max(0, f32(f32(i - low) / Math.max(f32(0.001), f32(high - low)))))));
}
