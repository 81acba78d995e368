// A decoder-only transformer, written once against the Backend interface: the same code runs on the
// reference backend (tests) and the native one, for every architecture in the registry. A forward pass
// takes a token-packed batch and returns logits for the rows asked for.
import type { Backend, KVView } from '../backend/backend.js';
import type { ModelParts } from './architecture.js';
import { architectureOf } from './architectures/index.js';
import { type Batch, gatherRows, narrowBatch } from './batch.js';
import { BlendSelectionPass, withoutReusedGroups } from './blend-selection.js';
import type { FfnRows } from './blocks/decoder-layer.js';
import { type LayerStep, Scratch } from './blocks/layer-step.js';
import { GGUFFile } from './gguf/reader.js';
import { MetadataReader, type ModelConfig } from './model-config.js';
import { WeightLoader } from './weight-loader.js';

export interface ModelLoadOptions {
  /** The tokens one sequence may hold, or a function of the training context (default: the training context). */
  contextSize?: number | ((trained: number) => number);
  /** Called as matrices are readied for the kernels: bytes of weights done out of the total. */
  onProgress?: (done: number, total: number) => void;
}

export class TransformerModel {
  private readonly scratch = new Scratch();

  private constructor(
    readonly file: GGUFFile,
    readonly config: ModelConfig,
    readonly backend: Backend,
    private readonly parts: ModelParts,
  ) {}

  /**
   * Loads a model from a GGUF path (or an already opened file) onto a backend, for sequences of up to
   * `contextSize` tokens (default: the training context), with every matrix ready for the kernels
   * (repacked where the backend repacks), so no request pays for that.
   */
  static load(source: string | GGUFFile, backend: Backend, opts: ModelLoadOptions = {}): TransformerModel {
    const file = typeof source === 'string' ? GGUFFile.open(source) : source;
    const arch = architectureOf(file);
    const config = arch.readConfig(new MetadataReader(file, arch.name));
    const size = opts.contextSize;
    const contextSize = typeof size === 'function' ? size(config.contextLength) : size ?? config.contextLength;
    if (!(Number.isInteger(contextSize) && contextSize > 0)) throw new RangeError(`load: context size ${contextSize} is not a positive integer`);
    const loader = new WeightLoader(file, backend, arch.name);
    const parts = arch.load(loader, config, { contextSize });
    prepareMatrices(backend, loader, opts.onProgress);
    return new TransformerModel(file, config, backend, parts);
  }

  /** Runs the batch through the model, storing its K/V in `kv`; returns logits [logitRows.length, vocab]. */
  forward(input: Batch, kv: KVView): Float32Array {
    const c = this.config;
    const b = this.backend;
    const p = this.parts;
    if (input.tokens.length === 0) throw new RangeError('forward: empty batch');
    if (input.blend && input.blend.groups.length !== input.tokens.length) throw new RangeError(`forward: ${input.tokens.length} tokens but ${input.blend.groups.length} blend groups`);
    // Reused document tokens that recompute nothing never enter the pass.
    let batch = input.blend ? narrowBatch(input, withoutReusedGroups(input.blend)) : input;
    let n = batch.tokens.length;
    if (n === 0) {
      // Every token reused as it is: nothing to compute, and no logits (a sampled token is never reused).
      input.blend!.recomputed = 0;
      return new Float32Array(0);
    }
    const rows = batch.rows ?? batch.positions;
    if (batch.positions.length !== n || batch.slots.length !== n || rows.length !== n) {
      throw new RangeError(`forward: ${n} tokens but ${batch.positions.length} positions, ${rows.length} rows and ${batch.slots.length} slots`);
    }
    if (batch.scores && batch.scores.voters.length !== n) throw new RangeError(`forward: ${n} tokens but ${batch.scores.voters.length} voters`);
    if (kv.kvHeads !== c.nKVHeads || kv.headDim !== c.headDim) {
      throw new RangeError(`forward: KV cache is ${kv.kvHeads}x${kv.headDim}, the model needs ${c.nKVHeads}x${c.headDim}`);
    }
    const x = this.scratch.get('x', n * c.dim);
    const h = this.scratch.get('h', n * c.dim);

    b.embed(x, batch.tokens, p.tokenEmbd);
    if (p.embedScale !== undefined) for (let i = 0; i < x.length; i++) x[i] = x[i]! * p.embedScale;
    b.rmsnorm(h, x, p.layers[0]!.inputNorm, n, c.dim, c.normEps);
    const selection = batch.blend && new BlendSelectionPass(batch.blend, p.layers.length);
    for (let l = 0; l < p.layers.length; l++) {
      selection?.before(l, kv, batch);
      const step: LayerStep = { backend: b, batch, kv, layer: l, n, rows: batch.layerRows?.(l) ?? batch.rows ?? batch.positions, scratch: this.scratch };
      const next = p.layers[l + 1];
      // Past the last layer's attention only the logit rows matter: its MLP runs on them alone (as in
      // llama.cpp, whose matmuls then sum as for those rows alone, a decode's order where that is one row).
      const ffnRows = next || selection ? undefined : rowsToKeep(batch.logitRows, n);
      let ffn: FfnRows | undefined;
      if (ffnRows) {
        batch = narrowBatch(batch, ffnRows);
        n = ffnRows.length;
        ffn = { rows: ffnRows, step: { ...step, batch, n, rows: Int32Array.from(ffnRows, (i) => step.rows[i]!) } };
      }
      const out = p.layers[l]!.forward(x, h, step, ffn);
      // The next layer's input norm rides on this add; the final norm only needs the logit rows.
      if (next) b.addRmsnorm(x, out, h, next.inputNorm, n, c.dim, c.normEps);
      else b.add(x, out, n * c.dim);
      const keep = selection?.after(l, kv, batch);
      if (keep) {
        gatherRows(x, c.dim, keep);
        gatherRows(h, c.dim, keep);
        batch = narrowBatch(batch, keep);
        n = keep.length;
      }
    }
    if (input.blend) input.blend.recomputed = BlendSelectionPass.recomputed(batch);

    // Only the requested rows go through the final norm and the (large) output projection.
    const m = batch.logitRows.length;
    const last = new Float32Array(m * c.dim);
    batch.logitRows.forEach((row, i) => {
      if (!(row >= 0 && row < n)) throw new RangeError(`forward: logit row ${row} is outside the batch (0..${n - 1})`);
      last.set(x.subarray(row * c.dim, (row + 1) * c.dim), i * c.dim);
    });
    b.rmsnorm(last, last, p.outputNorm, m, c.dim, c.normEps);
    const logits = new Float32Array(m * c.vocabSize);
    b.matmul(logits, last, m, p.output);
    const cap = p.logitSoftcap;
    if (cap !== undefined) {
      // As llama.cpp's graph does it, in f32: times 1/cap, tanh (Math.tanh rounded stands for tanhf), times cap.
      const inverse = Math.fround(1 / cap);
      for (let i = 0; i < logits.length; i++) logits[i] = Math.fround(Math.tanh(Math.fround(logits[i]! * inverse))) * cap;
    }
    return logits;
  }

  /**
   * Moves stored keys to other positions: rows first .. first + count - 1 of `slot` are re-rotated by
   * `delta` positions in every layer, with each layer's RoPE (a reused document placed elsewhere).
   */
  shiftKeys(kv: KVView, slot: number, first: number, count: number, delta: number): void {
    if (delta === 0 || count === 0) return;
    this.parts.layers.forEach((layer, l) => layer.attention.shiftKeys(this.backend, kv, l, slot, first, count, delta));
  }

  close(): void {
    this.file.close();
  }
}

function prepareMatrices(backend: Backend, loader: WeightLoader, onProgress?: (done: number, total: number) => void): void {
  const total = loader.matrices.reduce((a, m) => a + m.bytes, 0);
  let done = 0;
  for (const m of loader.matrices) {
    backend.prepare?.(m.weight);
    done += m.bytes;
    onProgress?.(done, total);
  }
}

/** The batch rows that logits are asked for, ascending and once each; undefined where that is every row (or a row is out of range, which forward reports). */
function rowsToKeep(logitRows: Int32Array, n: number): Int32Array | undefined {
  const keep = new Uint8Array(n);
  for (const r of logitRows) {
    if (!(r >= 0 && r < n)) return undefined;
    keep[r] = 1;
  }
  const rows: number[] = [];
  keep.forEach((k, i) => k && rows.push(i));
  return rows.length === n ? undefined : Int32Array.from(rows);
}
