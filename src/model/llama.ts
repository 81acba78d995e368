// The Llama-family transformer, written once against the Backend interface: the same code runs on the
// reference backend (tests) and the native one. A forward pass takes a token-packed batch — any mix of
// prefill chunks and decodes of different sequences — and returns logits for the rows asked for.
import type { Backend, KVView, Weight } from '../backend/backend.js';
import { GGUFFile, type GGUFTensorInfo } from './gguf/reader.js';
import { typeName } from './gguf/types.js';
import { type LlamaConfig, ModelConfigError, readLlamaConfig } from './llama-config.js';

interface LayerWeights {
  attnNorm: Float32Array;
  wq: Weight;
  wk: Weight;
  wv: Weight;
  wo: Weight;
  bq?: Float32Array;
  bk?: Float32Array;
  bv?: Float32Array;
  ffnNorm: Float32Array;
  gate: Weight;
  up: Weight;
  down: Weight;
}

/**
 * One step's work: token i of the batch is `tokens[i]` at RoPE position `positions[i]` of KV slot
 * `slots[i]`, stored at cache row `rows[i]` of its slot and attending to rows 0..rows[i]. Rows equal
 * positions until a sequence evicts tokens (DESIGN.md §8.3); then its rows are fewer than its positions.
 */
export interface Batch {
  tokens: Int32Array;
  positions: Int32Array;
  /** Cache rows (default: the positions). */
  rows?: Int32Array;
  slots: Int32Array;
  /** Indices of the batch rows whose next-token logits are wanted (usually each sequence's last). */
  logitRows: Int32Array;
  /** Attention weights to collect for the eviction policies (omitted: none). */
  scores?: BatchScores;
  /** Per layer, cache rows where a layer keeps fewer rows than the slot (PyramidKV; default: `rows`). */
  layerRows?: (layer: number) => Int32Array;
}

/** Per layer, where attention adds the weights of the batch's voting tokens (see AttentionScores). */
export interface BatchScores {
  /** Per batch token: the accumulator it adds into, or -1. */
  voters: Int32Array;
  /** The layer's accumulators, [accumulator][kvHeads][stride]. */
  acc(layer: number): Float32Array;
  stride: number;
}

/** Scratch activations for up to `capacity` tokens, reused across steps. */
class Scratch {
  readonly x: Float32Array;
  readonly h: Float32Array;
  readonly q: Float32Array;
  readonly k: Float32Array;
  readonly v: Float32Array;
  readonly attn: Float32Array;
  readonly gate: Float32Array;
  readonly up: Float32Array;
  constructor(readonly capacity: number, c: LlamaConfig) {
    const n = capacity;
    this.x = new Float32Array(n * c.dim);
    this.h = new Float32Array(n * Math.max(c.dim, c.nHeads * c.headDim));
    this.q = new Float32Array(n * c.nHeads * c.headDim);
    this.k = new Float32Array(n * c.nKVHeads * c.headDim);
    this.v = new Float32Array(n * c.nKVHeads * c.headDim);
    this.attn = new Float32Array(n * c.nHeads * c.headDim);
    this.gate = new Float32Array(n * c.ffnDim);
    this.up = new Float32Array(n * c.ffnDim);
  }
}

export class LlamaModel {
  private scratch: Scratch | undefined;

  private constructor(
    readonly file: GGUFFile,
    readonly config: LlamaConfig,
    readonly backend: Backend,
    private readonly tokenEmbd: Weight,
    private readonly outputNorm: Float32Array,
    private readonly output: Weight,
    private readonly layers: LayerWeights[],
  ) {}

  /** Loads a model from a GGUF path (or an already opened file) onto a backend. */
  static load(source: string | GGUFFile, backend: Backend): LlamaModel {
    const file = typeof source === 'string' ? GGUFFile.open(source) : source;
    const c = readLlamaConfig(file);
    const where = file.path ?? 'model';
    const tensor = (name: string, cols: number, rows: number): GGUFTensorInfo => {
      const t = file.tensor(name);
      if (!t) throw new ModelConfigError(`${where}: tensor "${name}" is missing`);
      const want = rows === 1 ? [cols] : [cols, rows];
      if (t.dims.length !== want.length || t.dims.some((d, i) => d !== want[i])) {
        throw new ModelConfigError(`${where}: tensor "${name}" has shape [${t.dims.join(', ')}], the ${c.arch} hyperparameters need [${want.join(', ')}]`);
      }
      if (!backend.weightTypes.has(t.type)) {
        const runs = [...backend.weightTypes].map((x) => typeName(x)).join(', ');
        throw new ModelConfigError(`${where}: tensor "${name}" has type ${typeName(t.type)} (ggml type ${t.type}), which the ${backend.name} backend cannot run (it runs ${runs})`);
      }
      return t;
    };
    const weight = (name: string, cols: number, rows: number) => backend.loadWeight(file, tensor(name, cols, rows));
    const vector = (name: string, len: number) => warnIfNonFinite(where, name, backend.toFloat32(weight(name, len, 1)));
    const optionalVector = (name: string, len: number) => (file.tensor(name) ? vector(name, len) : undefined);

    const qDim = c.nHeads * c.headDim;
    const kvDim = c.nKVHeads * c.headDim;
    const tokenEmbd = weight('token_embd.weight', c.dim, c.vocabSize);
    // Models with tied embeddings have no output.weight and project with the embedding table.
    const output = file.tensor('output.weight') ? weight('output.weight', c.dim, c.vocabSize) : tokenEmbd;
    const layers: LayerWeights[] = [];
    for (let l = 0; l < c.nLayers; l++) {
      const p = `blk.${l}.`;
      layers.push({
        attnNorm: vector(`${p}attn_norm.weight`, c.dim),
        wq: weight(`${p}attn_q.weight`, c.dim, qDim),
        wk: weight(`${p}attn_k.weight`, c.dim, kvDim),
        wv: weight(`${p}attn_v.weight`, c.dim, kvDim),
        wo: weight(`${p}attn_output.weight`, qDim, c.dim),
        bq: optionalVector(`${p}attn_q.bias`, qDim),
        bk: optionalVector(`${p}attn_k.bias`, kvDim),
        bv: optionalVector(`${p}attn_v.bias`, kvDim),
        ffnNorm: vector(`${p}ffn_norm.weight`, c.dim),
        gate: weight(`${p}ffn_gate.weight`, c.dim, c.ffnDim),
        up: weight(`${p}ffn_up.weight`, c.dim, c.ffnDim),
        down: weight(`${p}ffn_down.weight`, c.ffnDim, c.dim),
      });
    }
    return new LlamaModel(file, c, backend, tokenEmbd, vector('output_norm.weight', c.dim), output, layers);
  }

  /** Runs the batch through the model, storing its K/V in `kv`; returns logits [logitRows.length, vocab]. */
  forward(batch: Batch, kv: KVView): Float32Array {
    const c = this.config;
    const b = this.backend;
    const n = batch.tokens.length;
    if (n === 0) throw new RangeError('forward: empty batch');
    const rows = batch.rows ?? batch.positions;
    if (batch.positions.length !== n || batch.slots.length !== n || rows.length !== n) {
      throw new RangeError(`forward: ${n} tokens but ${batch.positions.length} positions, ${rows.length} rows and ${batch.slots.length} slots`);
    }
    const votes = batch.scores;
    if (votes && votes.voters.length !== n) throw new RangeError(`forward: ${n} tokens but ${votes.voters.length} voters`);
    if (kv.kvHeads !== c.nKVHeads || kv.headDim !== c.headDim) {
      throw new RangeError(`forward: KV cache is ${kv.kvHeads}x${kv.headDim}, the model needs ${c.nKVHeads}x${c.headDim}`);
    }
    const s = this.scratchFor(n);
    const qDim = c.nHeads * c.headDim;
    const kvDim = c.nKVHeads * c.headDim;
    const x = s.x.subarray(0, n * c.dim);
    const h = s.h.subarray(0, n * c.dim);
    const q = s.q.subarray(0, n * qDim);
    const k = s.k.subarray(0, n * kvDim);
    const v = s.v.subarray(0, n * kvDim);
    const attn = s.attn.subarray(0, n * qDim);
    const gate = s.gate.subarray(0, n * c.ffnDim);
    const up = s.up.subarray(0, n * c.ffnDim);
    const ropeQ = { nHeads: c.nHeads, headDim: c.headDim, ropeDim: c.ropeDim, freqBase: c.ropeFreqBase, freqScale: c.ropeFreqScale, mode: c.ropeMode };
    const ropeK = { ...ropeQ, nHeads: c.nKVHeads };
    const shape = { nHeads: c.nHeads, nKVHeads: c.nKVHeads, headDim: c.headDim, scale: 1 / Math.sqrt(c.headDim) };

    b.embed(x, batch.tokens, this.tokenEmbd);
    b.rmsnorm(h, x, this.layers[0]!.attnNorm, n, c.dim, c.normEps);
    for (let l = 0; l < c.nLayers; l++) {
      const L = this.layers[l]!;
      // h = attnNorm(x) here: the previous layer's last residual add computed it.
      b.matmulMany([q, k, v], h, n, [L.wq, L.wk, L.wv]);
      if (L.bq) b.addBias(q, L.bq, n);
      if (L.bk) b.addBias(k, L.bk, n);
      if (L.bv) b.addBias(v, L.bv, n);
      b.rope(q, batch.positions, ropeQ);
      b.rope(k, batch.positions, ropeK);
      const layerRows = batch.layerRows?.(l) ?? rows;
      b.kvStore(kv, l, k, v, batch.slots, layerRows);
      b.attention(attn, q, kv, l, batch.slots, layerRows, shape, votes && { voters: votes.voters, acc: votes.acc(l), stride: votes.stride });
      b.matmul(h, attn, n, L.wo);
      b.addRmsnorm(x, h, h, L.ffnNorm, n, c.dim, c.normEps);
      b.matmulMany([gate, up], h, n, [L.gate, L.up]);
      b.swiglu(gate, gate, up, n * c.ffnDim);
      b.matmul(h, gate, n, L.down);
      // The next layer's attention norm rides on this add; the final norm only needs the logit rows.
      const next = this.layers[l + 1];
      if (next) b.addRmsnorm(x, h, h, next.attnNorm, n, c.dim, c.normEps);
      else b.add(x, h, n * c.dim);
    }

    // Only the requested rows go through the final norm and the (large) output projection.
    const m = batch.logitRows.length;
    const last = new Float32Array(m * c.dim);
    batch.logitRows.forEach((row, i) => {
      if (!(row >= 0 && row < n)) throw new RangeError(`forward: logit row ${row} is outside the batch (0..${n - 1})`);
      last.set(x.subarray(row * c.dim, (row + 1) * c.dim), i * c.dim);
    });
    b.rmsnorm(last, last, this.outputNorm, m, c.dim, c.normEps);
    const logits = new Float32Array(m * c.vocabSize);
    b.matmul(logits, last, m, this.output);
    return logits;
  }

  private scratchFor(n: number): Scratch {
    if (!this.scratch || this.scratch.capacity < n) this.scratch = new Scratch(Math.max(n, 16), this.config);
    return this.scratch;
  }

  close(): void {
    this.file.close();
  }
}

/** Norm and bias vectors are small enough to check at load: NaN or Inf there makes every logit NaN. */
function warnIfNonFinite(where: string, name: string, v: Float32Array): Float32Array {
  const bad = v.findIndex((x) => !Number.isFinite(x));
  if (bad >= 0) process.emitWarning(`${where}: tensor "${name}" holds a non-finite value (${v[bad]} at index ${bad}); generation will fail`, 'ModelWarning');
  return v;
}
