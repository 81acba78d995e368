// A configuration under test in the KV quality harness: something that reads a text teacher-forced and
// gives logits for every position. Most are the model over a KV manager built a particular way (a KV
// format); wrappers change how it runs (thread count, chunking), and a peer engine can be one too. A
// lossy technique that acts between chunks (eviction, compaction) is another TextRun over the same
// forward pass.
import { forwardInSlotChunks } from '../src/engine/forward-in-slot-chunks.js';
import type { KVCacheManager, KVShape } from '../src/kv/index.js';
import type { TransformerModel } from '../src/model/transformer.js';

/** One text being read: chunks in order, from position 0. */
export interface TextRun {
  /** Reads text[start .. start + tokens.length) and returns logits for each of those rows [tokens.length x vocab]. */
  feed(tokens: Int32Array, start: number): Float32Array | Promise<Float32Array>;
  close(): void | Promise<void>;
}

export interface QualityConfig {
  name: string;
  /** The configuration it is compared with (default: the harness's reference). */
  against?: string;
  /** Starts reading one text of at most `tokens` tokens. */
  open(tokens: number): TextRun | Promise<TextRun>;
}

/** The KV shape of one slot able to hold `tokens` tokens of `model`. */
export function oneSlotShape(model: TransformerModel, tokens: number): KVShape {
  const c = model.config;
  return { layers: c.nLayers, kvHeads: c.nKVHeads, headDim: c.headDim, maxSlots: 1, maxContext: tokens };
}

/** The model over a KV manager made by `build` for one slot: what a KV format changes is `build`. */
export function kvConfig(name: string, model: TransformerModel, build: (shape: KVShape) => KVCacheManager): QualityConfig {
  return {
    name,
    open: (tokens) => {
      const kv = build(oneSlotShape(model, tokens));
      const slot = kv.allocSlot();
      if (slot === null) throw new Error(`${name}: the KV manager gave no slot`);
      const lens = new Int32Array(kv.shape.maxSlots);
      return {
        feed(ids, start) {
          lens[slot] = start + ids.length;
          const grown = kv.step(lens);
          if (!grown.ok) throw new Error(`${name}: the KV manager cannot hold ${start + ids.length} tokens (${grown.reason ?? grown.limit})`);
          // As the engine runs it: a cache with a residual window (KIVI) takes chunks of at most 32 tokens.
          return forwardInSlotChunks(model, {
            tokens: ids,
            positions: Int32Array.from(ids, (_, i) => start + i),
            slots: new Int32Array(ids.length).fill(slot),
            logitRows: Int32Array.from(ids, (_, i) => i),
          }, kv.view());
        },
        close: () => kv.close(),
      };
    },
  };
}

/**
 * `config` with the native kernels on another thread count. The count is process-wide in the addon, so
 * it is set around each chunk and put back after.
 */
export function withThreads(config: QualityConfig, name: string, threads: number, setThreads: (n: number) => number, getThreads: () => number): QualityConfig {
  return {
    ...config,
    name,
    open: async (tokens) => {
      const run = await config.open(tokens);
      return {
        async feed(ids, start) {
          const before = getThreads();
          setThreads(threads);
          try {
            return await run.feed(ids, start);
          } finally {
            setThreads(before);
          }
        },
        close: () => run.close(),
      };
    },
  };
}

/** `config` fed in chunks of at most `chunk` tokens: the same tokens through other batch shapes. */
export function rechunked(config: QualityConfig, name: string, chunk: number): QualityConfig {
  return {
    ...config,
    name,
    open: async (tokens) => {
      const run = await config.open(tokens);
      return {
        async feed(ids, start) {
          const parts: Float32Array[] = [];
          for (let at = 0; at < ids.length; at += chunk) parts.push(await run.feed(ids.slice(at, at + chunk), start + at));
          const out = new Float32Array(parts.reduce((n, p) => n + p.length, 0));
          let at = 0;
          for (const p of parts) {
            out.set(p, at);
            at += p.length;
          }
          return out;
        },
        close: () => run.close(),
      };
    },
  };
}
