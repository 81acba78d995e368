// vserve's side of the single-sequence benchmark: the library's model forward pass on a backend, one
// KV slot, greedy decoding by argmax over the logits (what llama.cpp's temperature 0 does). The last
// run's decode logits rows are kept for timing the sampler on them (sampler-cost.ts).
import { ArrayKV } from '../../src/backend/array-kv.js';
import type { Backend } from '../../src/backend/backend.js';
import { createBackend, type BackendKind } from '../../src/backend/index.js';
import { TransformerModel } from '../../src/model/transformer.js';
import { nativeIsa } from '../native-addon.js';
import type { RunTimings, SingleSequenceEngine } from './engine.js';

function argmax(x: Float32Array): number {
  let best = 0;
  for (let i = 1; i < x.length; i++) if (x[i]! > x[best]!) best = i;
  return best;
}

/** Decode logits rows kept from a run: enough to vary the distributions, few enough to stay in memory. */
const KEPT_DECODE_ROWS = 8;

export class VserveEngine implements SingleSequenceEngine {
  readonly label: string;
  readonly details: Record<string, string | number>;
  private readonly kv: ArrayKV;
  /** The last decode logits rows of the latest run that decoded (forward returns a fresh array per step). */
  decodeLogits: Float32Array[] = [];

  private constructor(private readonly model: TransformerModel, contextSize: number, threads: number) {
    const c = model.config;
    this.kv = new ArrayKV(c.nLayers, 1, Math.min(contextSize, c.contextLength), c.nKVHeads, c.headDim);
    this.label = `vserve ${model.backend.name} t=${threads}`;
    this.details = { engine: 'vserve', backend: model.backend.name, threads, kv: 'ArrayKV f32' };
    if (model.backend.name === 'native') this.details.isa = nativeIsa() ?? 'unknown';
  }

  /**
   * Loads the model on the named backend. Returns undefined when that backend is not really available
   * (until the native binding lands, 'native' resolves to the reference backend, far too slow here).
   */
  static load(path: string, kind: BackendKind, threads: number, contextSize: number): VserveEngine | undefined {
    const backend: Backend = createBackend(kind, { threads });
    if (backend.name !== kind) {
      backend.close();
      return undefined;
    }
    return new VserveEngine(TransformerModel.load(path, backend, { contextSize }), contextSize, threads);
  }

  async run(prompt: readonly number[], generate: number): Promise<RunTimings> {
    const n = prompt.length;
    if (n + generate > this.kv.maxContext) throw new RangeError(`${n} + ${generate} tokens exceed the benchmark context ${this.kv.maxContext}`);
    const t0 = performance.now();
    const logits = this.model.forward({
      tokens: Int32Array.from(prompt),
      positions: Int32Array.from(prompt, (_, i) => i),
      slots: new Int32Array(n),
      logitRows: Int32Array.of(n - 1),
    }, this.kv);
    let token = argmax(logits);
    let last = performance.now();
    const prefillMs = last - t0;
    const decodeMs: number[] = [];
    const rows: Float32Array[] = [];
    for (let i = 1; i < generate; i++) {
      const out = this.model.forward({
        tokens: Int32Array.of(token),
        positions: Int32Array.of(n + i - 1),
        slots: Int32Array.of(0),
        logitRows: Int32Array.of(0),
      }, this.kv);
      token = argmax(out);
      const now = performance.now();
      decodeMs.push(now - last);
      last = now;
      rows.push(out);
      if (rows.length > KEPT_DECODE_ROWS) rows.shift();
    }
    if (rows.length > 0) this.decodeLogits = rows;
    return { prefillMs, decodeMs };
  }

  async close(): Promise<void> {
    this.model.backend.close();
    this.model.close();
  }
}
