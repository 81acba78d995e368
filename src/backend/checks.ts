// Argument checks and small shared computations every backend applies at its op boundaries.
import type { AttentionScores, AttentionShape, KVView, RopeParams } from './backend.js';
import { KVError } from '../kv/errors.js';
import type { GGUFTensorInfo } from '../model/gguf/reader.js';
import { type GGMLType, typeName, typeTraits } from '../model/gguf/types.js';

export function checkLength(what: string, a: ArrayLike<number>, need: number): void {
  if (a.length < need) throw new RangeError(`${what}: has ${a.length} elements, needs ${need}`);
}

/** A GGUF tensor as a matrix: ggml's dims[0] is the row length; vectors are one row. */
export function weightDims(info: GGUFTensorInfo): { rows: number; cols: number } {
  if (info.dims.length > 2) throw new RangeError(`tensor "${info.name}" has ${info.dims.length} dimensions; weights have at most 2`);
  return { cols: info.dims[0]!, rows: info.dims[1] ?? 1 };
}

export function checkWeightShape(name: string, type: GGMLType, rows: number, cols: number, nBytes: number): void {
  const t = typeTraits(type);
  if (!t) throw new RangeError(`weight "${name}": unknown type ${type}`);
  if (!(Number.isInteger(rows) && rows > 0 && Number.isInteger(cols) && cols > 0)) {
    throw new RangeError(`weight "${name}": bad shape ${rows}x${cols}`);
  }
  if (cols % t.blockSize !== 0) throw new RangeError(`weight "${name}": row length ${cols} is not a multiple of the ${typeName(type)} block size ${t.blockSize}`);
  const need = (rows * cols / t.blockSize) * t.typeSize;
  if (nBytes !== need) throw new RangeError(`weight "${name}": ${rows}x${cols} ${typeName(type)} needs ${need} bytes, got ${nBytes}`);
}

/** Throws a RangeError naming what is wrong with RoPE parameters. */
export function checkRopeParams(p: RopeParams): void {
  if (p.ropeDim % 2 !== 0 || p.ropeDim > p.headDim) throw new RangeError(`rope: ropeDim ${p.ropeDim} must be even and <= headDim ${p.headDim}`);
  const half = p.ropeDim / 2;
  const factors = p.freqFactors;
  if (factors) {
    if (factors.length !== half) throw new RangeError(`rope: ${factors.length} frequency factors for ${half} rotated pairs`);
    const bad = factors.findIndex((v) => !(v > 0 && Number.isFinite(v)));
    if (bad >= 0) throw new RangeError(`rope: frequency factor ${bad} is ${factors[bad]}, not a positive number`);
  }
  if (p.attnFactor !== undefined && !Number.isFinite(p.attnFactor)) throw new RangeError(`rope: attnFactor ${p.attnFactor} is not finite`);
  const ramp = p.yarnRamp;
  if (ramp) {
    if (ramp.length !== half) throw new RangeError(`rope: ${ramp.length} YaRN ramp values for ${half} rotated pairs`);
    const bad = ramp.findIndex((v) => !(v >= 0 && v <= 1));
    if (bad >= 0) throw new RangeError(`rope: YaRN ramp value ${bad} is ${ramp[bad]}, not in [0, 1]`);
  }
}

/**
 * Each rotated pair's frequency divisor with YaRN's blend folded in (the angle times freqScale over it is
 * the pair's angle), for code that turns keys by a whole angle at once (shiftKeys); undefined where every
 * divisor is 1.
 */
export function ropeShiftFactors(p: RopeParams): Float32Array | undefined {
  const ramp = p.yarnRamp;
  if (!ramp) return p.freqFactors;
  return Float32Array.from(ramp, (r, i) => (p.freqFactors ? p.freqFactors[i]! : 1) * p.freqScale / (p.freqScale * (1 - r) + r));
}

/** RoPE inverse frequencies base^(-2i/ropeDim) for i < ropeDim/2. */
export function ropeInvFreqs(p: RopeParams): Float64Array {
  checkRopeParams(p);
  const half = p.ropeDim / 2;
  const factors = ropeShiftFactors(p);
  const f = new Float64Array(half);
  for (let i = 0; i < half; i++) f[i] = Math.pow(p.freqBase, (-2 * i) / p.ropeDim) / (factors ? factors[i]! : 1);
  return f;
}

/**
 * The checks native attention makes of a scores output (native/attention_scores.h): one voter per
 * token, none below -1, stride above every voting token's last row, acc long enough for the largest voter.
 */
export function checkAttentionScores(scores: AttentionScores, rows: Int32Array, kvHeads: number): void {
  const { voters, acc, stride } = scores;
  if (voters.length !== rows.length) throw new RangeError(`attention: voters has ${voters.length} entries but the batch has ${rows.length} tokens`);
  if (!(Number.isInteger(stride) && stride >= 0)) throw new RangeError(`attention: scores stride ${stride} must be a non-negative integer`);
  let most = -1;
  voters.forEach((v, i) => {
    if (v < -1) throw new RangeError(`attention: voters[${i}] = ${v} is below -1`);
    if (v < 0) return;
    most = Math.max(most, v);
    if (rows[i]! >= stride) throw new RangeError(`attention: scores stride ${stride} is too small: token ${i} attends rows 0..${rows[i]}`);
  });
  const need = (most + 1) * kvHeads * stride;
  if (acc.length < need) {
    throw new RangeError(`attention: acc has ${acc.length} elements, too few for voter ${most}: needs (${most} + 1) x ${kvHeads} KV heads x stride ${stride} = ${need}`);
  }
}

/** A window is a whole number of rows >= 1 and a soft-cap a positive finite number, where given. */
export function checkAttentionOptions(s: AttentionShape): void {
  if (s.window !== undefined && !(Number.isInteger(s.window) && s.window >= 1 && s.window <= 0x7fffffff)) {
    throw new RangeError(`attention: window ${s.window} must be a whole number of rows >= 1`);
  }
  if (s.softcap !== undefined && !(Number.isFinite(s.softcap) && s.softcap > 0)) {
    throw new RangeError(`attention: softcap ${s.softcap} must be a positive finite number`);
  }
}

/**
 * What shiftKeys refuses in both backends before it touches the cache (native/kv_shift_keys.cc checks the
 * same again; a paged slot's block ids are checked where the rows are looked up). Returns the inverse
 * frequencies of `p`. Rows must be ones the slot backs: below maxContext (contiguous) or the slot's
 * seqLen (paged).
 */
export function checkKeyShift(kv: KVView, slot: number, first: number, count: number, delta: number, p: RopeParams): Float64Array {
  if (p.nHeads !== kv.kvHeads || p.headDim !== kv.headDim) {
    throw new RangeError(`shiftKeys: rope params (${p.nHeads} heads of ${p.headDim}) do not match the cache's K rows (${kv.kvHeads} heads of ${kv.headDim})`);
  }
  if (!(p.freqBase > 0 && Number.isFinite(p.freqBase) && Number.isFinite(p.freqScale))) {
    throw new RangeError(`shiftKeys: freqBase ${p.freqBase} must be positive and freqScale ${p.freqScale} finite`);
  }
  const invFreq = ropeInvFreqs(p);
  for (const [name, v] of [['slot', slot], ['first', first], ['count', count]] as const) {
    if (!(Number.isInteger(v) && v >= 0)) throw new RangeError(`shiftKeys: ${name} ${v} must be a non-negative integer`);
  }
  if (!(Number.isInteger(delta) && Math.abs(delta) <= 0x7fffffff)) {
    throw new RangeError(`shiftKeys: delta ${delta} must be a whole number of positions within the int32 range`);
  }
  if (kv.residual) {
    throw new KVError('ERR_KV_INVALID_ARGUMENT',
      'shiftKeys: shifting keys needs a cache without a residual window (this one keeps its newest tokens in an f16 ring)');
  }
  if (slot >= kv.maxSlots) throw new RangeError(`shiftKeys: slot ${slot} is outside [0, ${kv.maxSlots})`);
  const group = kv.keyFormat.groupTokens;
  if (first % group !== 0 || count % group !== 0) {
    throw new RangeError(`shiftKeys: the K format ${kv.keyFormat.name} encodes groups of ${group} rows: ` +
      `first (${first}) and count (${count}) must be multiples of ${group}`);
  }
  if (count === 0) return invFreq;
  const rows = `rows ${first}..${first + count - 1}`;
  if (kv.layout === 'contiguous') {
    if (first + count > kv.maxContext) throw new RangeError(`shiftKeys: ${rows} are outside the context [0, ${kv.maxContext})`);
  } else {
    const len = Math.max(kv.seqLens[slot]!, 0);
    if (first + count > len || first + count > kv.maxBlocksPerSlot * kv.blockSize) {
      throw new RangeError(`shiftKeys: ${rows} are outside slot ${slot}'s ${len} tokens`);
    }
  }
  return invFreq;
}
