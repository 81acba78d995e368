// The reference backend: every op in plain TypeScript with f32 math, written to be obviously right
// rather than fast. It is the oracle the native kernels are tested against.
import { residualBoundary, type AttentionScores, type AttentionShape, type Backend, type KVView, type RopeParams, type Weight } from '../backend.js';
import { DEQUANTIZABLE_TYPES, dequantize } from '../../model/gguf/dequant.js';
import type { GGUFFile, GGUFTensorInfo } from '../../model/gguf/reader.js';
import { GGMLType } from '../../model/gguf/types.js';
import { checkAttentionOptions, checkAttentionScores, checkKeyShift, checkLength, checkRopeParams, checkWeightShape, weightDims } from '../checks.js';
import { kvRowOffset } from '../kv-rows.js';
import { f16Format } from '../../kv/formats/f16.js';
import { f16ToF32, f32ToF16 } from '../../kv/formats/half.js';
import { hadamardBlock, hadamardInPlace } from '../../kv/hadamard.js';
import { geluLikeLlamaCpp } from './gelu.js';
import { ropeCosSin } from './rope-angles.js';

/** A weight held as raw bytes, dequantized to f32 the first time an op needs it. */
class ReferenceWeight implements Weight {
  private f32: Float32Array | undefined;
  constructor(
    readonly name: string,
    readonly type: GGMLType,
    readonly rows: number,
    readonly cols: number,
    private readonly bytes: Uint8Array,
  ) {}
  floats(): Float32Array {
    this.f32 ??= dequantize(this.type, this.bytes, this.rows * this.cols);
    return this.f32;
  }
}

function asRef(w: Weight): ReferenceWeight {
  if (!(w instanceof ReferenceWeight)) throw new TypeError(`weight "${w.name}" was not created by the reference backend`);
  return w;
}

export class ReferenceBackend implements Backend {
  readonly name = 'reference';
  readonly weightTypes = DEQUANTIZABLE_TYPES;

  loadWeight(file: GGUFFile, info: GGUFTensorInfo): Weight {
    const { rows, cols } = weightDims(info);
    return this.createWeight(info.name, info.type, rows, cols, file.tensorBytes(info));
  }

  createWeight(name: string, type: GGMLType, rows: number, cols: number, bytes: Uint8Array): Weight {
    checkWeightShape(name, type, rows, cols, bytes.length);
    return new ReferenceWeight(name, type, rows, cols, bytes);
  }

  toFloat32(w: Weight): Float32Array {
    return asRef(w).floats().slice();
  }

  matmul(out: Float32Array, x: Float32Array, n: number, w: Weight): void {
    const W = asRef(w).floats();
    const { rows, cols } = w;
    checkLength('matmul x', x, n * cols);
    checkLength('matmul out', out, n * rows);
    // f16 weights meet activations rounded to f16, as in llama.cpp (native/matmul.cc).
    if (w.type === GGMLType.F16) x = x.map((v) => f16ToF32(f32ToF16(v)));
    for (let t = 0; t < n; t++) {
      const xo = t * cols;
      for (let r = 0; r < rows; r++) {
        const wo = r * cols;
        let acc = 0;
        for (let c = 0; c < cols; c++) acc += x[xo + c]! * W[wo + c]!;
        out[t * rows + r] = acc;
      }
    }
  }

  matmulMany(outs: readonly Float32Array[], x: Float32Array, n: number, ws: readonly Weight[]): void {
    if (outs.length !== ws.length) throw new RangeError(`matmulMany: ${outs.length} outputs for ${ws.length} weights`);
    if (ws.some((w) => w.cols !== ws[0]?.cols)) throw new RangeError('matmulMany: weights must have the same number of columns');
    ws.forEach((w, i) => this.matmul(outs[i]!, x, n, w));
  }

  embed(out: Float32Array, ids: Int32Array, table: Weight): void {
    const W = asRef(table).floats();
    const dim = table.cols;
    checkLength('embed out', out, ids.length * dim);
    ids.forEach((id, i) => {
      if (!(id >= 0 && id < table.rows)) throw new RangeError(`token id ${id} is outside the vocabulary (0..${table.rows - 1})`);
      out.set(W.subarray(id * dim, (id + 1) * dim), i * dim);
    });
  }

  rmsnorm(out: Float32Array, x: Float32Array, weight: Float32Array, n: number, dim: number, eps: number): void {
    checkLength('rmsnorm x', x, n * dim);
    checkLength('rmsnorm out', out, n * dim);
    checkLength('rmsnorm weight', weight, dim);
    for (let r = 0; r < n; r++) {
      let ss = 0;
      for (let i = 0; i < dim; i++) ss += x[r * dim + i]! ** 2;
      const inv = 1 / Math.sqrt(ss / dim + eps);
      for (let i = 0; i < dim; i++) out[r * dim + i] = x[r * dim + i]! * inv * weight[i]!;
    }
  }

  addRmsnorm(x: Float32Array, y: Float32Array, out: Float32Array, weight: Float32Array, n: number, dim: number, eps: number): void {
    checkLength('addRmsnorm y', y, n * dim);
    this.add(x, y, n * dim);
    this.rmsnorm(out, x, weight, n, dim, eps);
  }

  rope(x: Float32Array, positions: Int32Array, p: RopeParams): void {
    const width = p.nHeads * p.headDim;
    checkLength('rope x', x, positions.length * width);
    checkRopeParams(p);
    const half = p.ropeDim / 2;
    const cos = new Float32Array(half), sin = new Float32Array(half);
    const f32 = Math.fround;
    for (let t = 0; t < positions.length; t++) {
      ropeCosSin(p, positions[t]!, cos, sin);
      for (let h = 0; h < p.nHeads; h++) {
        const base = t * width + h * p.headDim;
        for (let i = 0; i < half; i++) {
          const a = p.mode === 'neox' ? base + i : base + 2 * i;
          const b = p.mode === 'neox' ? base + i + half : base + 2 * i + 1;
          const x0 = x[a]!, x1 = x[b]!;
          // Fused as native and llama.cpp fuse them: x0's product is exact in f64, the other rounded to f32.
          x[a] = x0 * cos[i]! - f32(x1 * sin[i]!);
          x[b] = x0 * sin[i]! + f32(x1 * cos[i]!);
        }
      }
    }
  }

  swiglu(out: Float32Array, gate: Float32Array, up: Float32Array, len: number): void {
    checkLength('swiglu gate', gate, len);
    checkLength('swiglu up', up, len);
    checkLength('swiglu out', out, len);
    for (let i = 0; i < len; i++) {
      const g = gate[i]!;
      out[i] = (g / (1 + Math.exp(-g))) * up[i]!;
    }
  }

  softmax(out: Float32Array, x: Float32Array, n: number, len: number): void {
    if (!(Number.isInteger(len) && len > 0)) throw new RangeError(`softmax: len ${len} must be a positive integer`);
    checkLength('softmax x', x, n * len);
    checkLength('softmax out', out, n * len);
    for (let r = 0; r < n; r++) {
      const at = r * len;
      let max = -Infinity;
      for (let i = 0; i < len; i++) max = Math.max(max, x[at + i]!);
      let sum = 0;
      for (let i = 0; i < len; i++) {
        out[at + i] = Math.exp(Math.fround(x[at + i]! - max));
        sum += out[at + i]!;
      }
      const inv = Math.fround(1 / sum);
      for (let i = 0; i < len; i++) out[at + i] = out[at + i]! * inv;
    }
  }

  geglu(out: Float32Array, gate: Float32Array, up: Float32Array, len: number): void {
    checkLength('geglu gate', gate, len);
    checkLength('geglu up', up, len);
    checkLength('geglu out', out, len);
    for (let i = 0; i < len; i++) {
      const g = gate[i]!;
      out[i] = g <= -10 ? 0 : geluLikeLlamaCpp(g) * up[i]!;
    }
  }

  add(x: Float32Array, y: Float32Array, len: number): void {
    checkLength('add x', x, len);
    checkLength('add y', y, len);
    for (let i = 0; i < len; i++) x[i] = x[i]! + y[i]!;
  }

  addBias(x: Float32Array, bias: Float32Array, n: number): void {
    const d = bias.length;
    checkLength('addBias x', x, n * d);
    for (let r = 0; r < n; r++) for (let i = 0; i < d; i++) x[r * d + i] = x[r * d + i]! + bias[i]!;
  }

  kvStore(kv: KVView, layer: number, k: Float32Array, v: Float32Array, slots: Int32Array, positions: Int32Array): void {
    const row = kv.kvHeads * kv.headDim;
    const n = slots.length;
    checkLength('kvStore k', k, n * row);
    checkLength('kvStore v', v, n * row);
    if (kv.rotate) {
      k = rotated(k.slice(0, n * row), kv.headDim);
      v = rotated(v.slice(0, n * row), kv.headDim);
    }
    const K = kv.keys(layer), V = kv.values(layer);
    const ring = kv.residual;
    if (ring) checkSlotShares(slots, ring.chunkTokens);
    // Rows arrive one at a time: formats that encode groups of rows take them only through a ring.
    if (!ring && (kv.keyFormat.groupTokens > 1 || kv.valueFormat.groupTokens > 1)) {
      throw new RangeError('kvStore: formats that encode groups of rows need a residual window to store rows');
    }
    for (let t = 0; t < n; t++) {
      const slot = slots[t]!, pos = positions[t]!;
      if (!ring) {
        const at = kvRowOffset(kv, slot, pos);
        kv.keyFormat.encode(k, t * row, row, K, at, kv.rowBytes);
        kv.valueFormat.encode(v, t * row, row, V, at, kv.rowBytes);
        continue;
      }
      kvRowOffset(kv, slot, pos); // range checks
      const encoded = ring.encoded(layer);
      const first = encoded[slot]!;
      const windowRows = ring.tokens + ring.groupTokens;
      if (pos < first || pos >= first + windowRows) {
        throw new RangeError(`position ${pos} of slot ${slot} is outside its residual window ${first}..${first + windowRows - 1}`);
      }
      const at = (slot * ring.ringRows + (pos % ring.ringRows)) * row * 2;
      f16Format.encode(k, t * row, row, ring.keys(layer), at, 0);
      f16Format.encode(v, t * row, row, ring.values(layer), at, 0);
      // A full ring: its oldest group leaves the window, encoded in the cache's formats.
      if (pos + 1 - first === windowRows) {
        this.encodeGroup(kv, layer, slot, first);
        encoded[slot] = first + ring.groupTokens;
      }
    }
  }

  /** Encodes the ring rows of positions first .. first + G - 1 of slot into the cache's rows. */
  private encodeGroup(kv: KVView, layer: number, slot: number, first: number): void {
    const ring = kv.residual!;
    const row = kv.kvHeads * kv.headDim, g = ring.groupTokens;
    for (const [rows, format, cache] of [[ring.keys(layer), kv.keyFormat, kv.keys(layer)], [ring.values(layer), kv.valueFormat, kv.values(layer)]] as const) {
      const floats = new Float32Array(g * row);
      for (let j = 0; j < g; j++) {
        const at = (slot * ring.ringRows + ((first + j) % ring.ringRows)) * row * 2;
        f16Format.decode(rows, at, 0, row, floats, j * row, row, 0, 0);
      }
      for (let j = 0; j < g; j += format.groupTokens) {
        format.encode(floats, j * row, row, cache, kvRowOffset(kv, slot, first + j), kv.rowBytes);
      }
    }
  }

  /** Positions 0..pos of slot's K and V rows, decoded from the cache's formats: [pos + 1][kvHeads * headDim]. */
  private decodedRows(kv: KVView, layer: number, slot: number, pos: number): { keys: Float32Array; values: Float32Array } {
    const row = kv.kvHeads * kv.headDim;
    const keys = new Float32Array((pos + 1) * row), values = new Float32Array((pos + 1) * row);
    const K = kv.keys(layer), V = kv.values(layer);
    const ring = kv.residual;
    const encoded = ring ? residualBoundary(ring, layer, slot, pos) : Infinity;
    for (let j = 0; j <= pos; j++) {
      const at = kvRowOffset(kv, slot, j);
      if (j < encoded) {
        kv.keyFormat.decode(K, at, 0, row, keys, j * row, row, j % kv.keyFormat.groupTokens, kv.rowBytes);
        kv.valueFormat.decode(V, at, 0, row, values, j * row, row, j % kv.valueFormat.groupTokens, kv.rowBytes);
      } else {
        const r = (slot * ring!.ringRows + (j % ring!.ringRows)) * row * 2;
        f16Format.decode(ring!.keys(layer), r, 0, row, keys, j * row, row, 0, 0);
        f16Format.decode(ring!.values(layer), r, 0, row, values, j * row, row, 0, 0);
      }
    }
    return { keys, values };
  }

  attention(out: Float32Array, q: Float32Array, kv: KVView, layer: number, slots: Int32Array, rows: Int32Array, s: AttentionShape, scores?: AttentionScores): void {
    const n = slots.length;
    const qWidth = s.nHeads * s.headDim;
    checkLength('attention q', q, n * qWidth);
    checkLength('attention out', out, n * qWidth);
    if (s.nHeads % s.nKVHeads !== 0) throw new RangeError(`${s.nHeads} query heads are not a multiple of ${s.nKVHeads} KV heads`);
    if (scores) checkAttentionScores(scores, rows, s.nKVHeads);
    checkAttentionOptions(s);
    // Rotated caches: (Hq).(Hk) = q.k, and the output on rotated V is H times the output; H turns it back.
    this.attend(out, kv.rotate ? rotated(q.slice(0, n * qWidth), s.headDim) : q, kv, layer, slots, rows, s, scores);
    if (kv.rotate) rotated(out.subarray(0, n * qWidth), s.headDim);
  }

  private attend(out: Float32Array, q: Float32Array, kv: KVView, layer: number, slots: Int32Array, rows: Int32Array, s: AttentionShape, report?: AttentionScores): void {
    const n = slots.length;
    const qWidth = s.nHeads * s.headDim;
    const group = s.nHeads / s.nKVHeads;
    const row = kv.kvHeads * kv.headDim;
    for (let t = 0; t < n; t++) {
      const slot = slots[t]!, pos = rows[t]!;
      const { keys: K, values: V } = this.decodedRows(kv, layer, slot, pos);
      const voter = report ? report.voters[t]! : -1;
      // The rows this token sees: all up to its own, or the last `window` of them.
      const first = s.window === undefined ? 0 : Math.max(0, pos - s.window + 1);
      // This token's probabilities summed over each KV head's query heads, added into acc once per row.
      const probs = voter >= 0 ? new Float64Array(pos + 1) : undefined;
      for (let h = 0; h < s.nHeads; h++) {
        const qo = t * qWidth + h * s.headDim;
        const kvOff = Math.floor(h / group) * s.headDim;
        const scores = new Float64Array(pos + 1);
        let max = -Infinity;
        for (let j = first; j <= pos; j++) {
          const ko = j * row + kvOff;
          let dot = 0;
          for (let d = 0; d < s.headDim; d++) dot += q[qo + d]! * K[ko + d]!;
          let score = dot * s.scale;
          if (s.softcap !== undefined) score = s.softcap * Math.tanh(score / s.softcap);
          scores[j] = score;
          if (score > max) max = score;
        }
        let sum = 0;
        for (let j = first; j <= pos; j++) sum += scores[j] = Math.exp(scores[j]! - max);
        for (let d = 0; d < s.headDim; d++) {
          let acc = 0;
          for (let j = first; j <= pos; j++) acc += scores[j]! * V[j * row + kvOff + d]!;
          out[qo + d] = acc / sum;
        }
        if (!probs) continue;
        for (let j = first; j <= pos; j++) probs[j] = probs[j]! + scores[j]! / sum;
        if ((h + 1) % group === 0) {
          const { acc, stride } = report!;
          const at = (voter * s.nKVHeads + (h + 1) / group - 1) * stride;
          for (let j = first; j <= pos; j++) acc[at + j] = acc[at + j]! + probs[j]!;
          probs.fill(0);
        }
      }
    }
  }

  shiftKeys(kv: KVView, layer: number, slot: number, first: number, count: number, delta: number, p: RopeParams): void {
    const invFreq = checkKeyShift(kv, slot, first, count, delta, p);
    const K = kv.keys(layer);
    if (count === 0) return;
    const format = kv.keyFormat, group = format.groupTokens, row = kv.kvHeads * kv.headDim;
    // Every row's offset first (kvRowOffset checks them), so a bad one throws before anything changes.
    const offsets = Array.from({ length: count }, (_, j) => kvRowOffset(kv, slot, first + j));
    for (let j = 0; j < count; j += group) {
      if (offsets[j + group - 1]! !== offsets[j]! + (group - 1) * kv.rowBytes) {
        throw new RangeError('shiftKeys: the rows of a group are not adjacent in this cache layout');
      }
    }
    if (delta === 0) return; // R(0) is the identity: leave the bytes as they are
    const pos = delta * p.freqScale;
    const cos = invFreq.map((f) => Math.cos(pos * f)), sin = invFreq.map((f) => Math.sin(pos * f));
    const half = p.ropeDim / 2;
    const rows = new Float32Array(group * row);
    for (let j = 0; j < count; j += group) {
      for (let r = 0; r < group; r++) {
        const at = r * row;
        format.decode(K, offsets[j + r]!, 0, row, rows, at, row, r, kv.rowBytes);
        // H is its own inverse: undo the stored rotation, rotate by delta, redo it.
        if (kv.rotate) rotated(rows.subarray(at, at + row), kv.headDim);
        for (let h = 0; h < kv.kvHeads; h++) {
          const base = at + h * kv.headDim;
          for (let i = 0; i < half; i++) {
            const a = p.mode === 'neox' ? base + i : base + 2 * i;
            const b = p.mode === 'neox' ? base + i + half : base + 2 * i + 1;
            const x0 = rows[a]!, x1 = rows[b]!;
            // In f64, rounded once to f32, as native/kv_shift_keys.cc does it.
            rows[a] = x0 * cos[i]! - x1 * sin[i]!;
            rows[b] = x0 * sin[i]! + x1 * cos[i]!;
          }
        }
        if (kv.rotate) rotated(rows.subarray(at, at + row), kv.headDim);
      }
      format.encode(rows, 0, row, K, offsets[j]!, kv.rowBytes);
    }
  }

  close(): void {}
}

/** With a residual window, one kvStore takes at most `most` tokens of a slot (see ResidualWindow). */
function checkSlotShares(slots: Int32Array, most: number): void {
  const counts = new Map<number, number>();
  for (const s of slots) {
    const c = (counts.get(s) ?? 0) + 1;
    if (c > most) throw new RangeError(`a cache with a residual window takes at most ${most} tokens of a slot per kvStore; slot ${s} has more`);
    counts.set(s, c);
  }
}

/** Rotates every head of x (consecutive vectors of headDim) in place; returns x. */
function rotated(x: Float32Array, headDim: number): Float32Array {
  const block = hadamardBlock(headDim);
  for (let at = 0; at < x.length; at += headDim) hadamardInPlace(x, at, headDim, block);
  return x;
}
