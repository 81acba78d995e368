// Attention temperature by position (Llama 4's scaling, also in Ministral 3 / Devstral Small 2): each
// query, after RoPE, is multiplied by 1 + beta * ln(floor(pos / span) + 1), so queries far past the
// trained context sharpen their softmax, and every query within the first `span` positions is unchanged.
// beta is attention.temperature_scale; llama.cpp takes the span from the YaRN original context
// (rope.scaling.original_context_length, else context_length).
import { ModelConfigError, type MetadataReader } from './model-config.js';

export interface QueryTemperature {
  /** beta: how strongly each further span sharpens the queries. */
  scale: number;
  /** Positions per step of the floor (the original context). */
  span: number;
}

/** The multiplier of the query at RoPE position `pos`. */
export function queryTemperatureAt(t: QueryTemperature, pos: number): number {
  return 1 + t.scale * Math.log(Math.floor(pos / t.span) + 1);
}

/** The file's temperature scaling, or undefined when attention.temperature_scale is absent or 0. */
export function readQueryTemperature(m: MetadataReader, span: number): QueryTemperature | undefined {
  const scale = m.has('attention.temperature_scale') ? m.number('attention.temperature_scale') : 0;
  if (scale === 0) return undefined;
  if (!Number.isFinite(scale)) throw new ModelConfigError(`${m.where}: ${m.arch}.attention.temperature_scale = ${scale} is not a number`);
  if (!(span > 0)) throw new ModelConfigError(`${m.where}: attention temperature scaling needs a positive original context, the file gives ${span}`);
  return { scale, span };
}

/** Multiplies each token's query rows (width qDim) by its position's temperature, in place. */
export function applyQueryTemperature(q: Float32Array, positions: Int32Array, n: number, qDim: number, t: QueryTemperature): void {
  for (let i = 0; i < n; i++) {
    // Rounded to f32 once, as llama.cpp stores the multiplier.
    const f = Math.fround(queryTemperatureAt(t, positions[i]!));
    if (f === 1) continue;
    const row = q.subarray(i * qDim, (i + 1) * qDim);
    for (let j = 0; j < qDim; j++) row[j] = row[j]! * f;
  }
}
