// An eviction policy as a configuration of the KV quality harness (kv-quality-run.ts): the model reads a
// text teacher-forced as the engine would run one request of it - the first `promptTokens` tokens are the
// prompt, computed in prefill steps, and every later token is one decode step - with the engine's own
// eviction (engine/kv-eviction.ts: voting, the policy, compaction) between steps. Only the rows its
// policy keeps are attended to, so the logits after the first eviction show what the policy lost.
import { KVEviction, resolveEviction, stepTokenLimit, type EvictingSequence } from '../src/engine/kv-eviction.js';
import type { EvictionPolicyName } from '../src/kv/eviction/index.js';
import { splitsByHead } from '../src/kv/shape.js';
import { StaticKVManager, type KVShape } from '../src/kv/index.js';
import type { TransformerModel } from '../src/model/transformer.js';
import { oneSlotShape, type QualityConfig } from './kv-quality-run.js';

export interface EvictionConfigSpec {
  name: string;
  policy: EvictionPolicyName;
  /** Rows the policy keeps (tokens). */
  budget: number;
  /** Tokens read as the prompt (prefill); the rest are decode steps. */
  promptTokens: number;
  /** Prefill tokens per step at most (the engine's step budget). */
  prefillChunk: number;
  /** KV format and the like, on top of the one-slot shape (default: the f32 cache the texts were made with). */
  shape?: Partial<KVShape>;
  against?: string;
  /** Run a decode-time policy's selection once, after the prompt, as the prompt-time ones run (a baseline at their memory). */
  once?: boolean;
}

export function evictionConfig(model: TransformerModel, spec: EvictionConfigSpec): QualityConfig {
  return {
    name: spec.name,
    ...(spec.against ? { against: spec.against } : {}),
    open: (tokens) => {
      const shape: KVShape = { ...oneSlotShape(model, tokens), type: { k: 'f32', v: 'f32' }, ...spec.shape };
      const kv = new StaticKVManager(shape);
      const slot = kv.allocSlot()!;
      const evictor = new KVEviction(
        { layers: shape.layers, kvHeads: shape.kvHeads, maxSlots: 1, maxContext: tokens },
        {
          compact: (s, lists) => kv.compact(s, lists),
          freePages: () => kv.availablePages(),
          perHead: splitsByHead(kv.shape),
        },
      );
      const resolved = resolveEviction({ policy: spec.policy, budget: spec.budget }, spec.promptTokens, tokens)!;
      const eviction = spec.once ? { ...resolved, policy: { ...resolved.policy, when: 'prompt' as const }, bounded: false } : resolved;
      const seq: EvictingSequence & { computed: number } = { slot, computed: 0, rows: 0, evictedTokens: 0, prompt: { length: spec.promptTokens }, eviction };
      evictor.admitted(seq);
      const lens = new Int32Array(1);
      const vocab = model.config.vocabSize;
      return {
        feed(ids, start) {
          if (start !== seq.computed) throw new Error(`${spec.name}: fed position ${start}, expected ${seq.computed}`);
          const out = new Float32Array(ids.length * vocab);
          for (let i = 0; i < ids.length;) {
            const pos = start + i;
            const count = pos < spec.promptTokens ? Math.min(ids.length - i, spec.promptTokens - pos, spec.prefillChunk, stepTokenLimit(seq)) : 1;
            if (!evictor.makeRoom(seq, count)) throw new Error(`${spec.name}: compaction failed`);
            lens[slot] = seq.rows + count;
            const grown = kv.step(lens);
            if (!grown.ok) throw new Error(`${spec.name}: the cache cannot hold ${seq.rows + count} rows`);
            const work = [{ seq, count }];
            const scores = evictor.votes(work);
            const rows = Int32Array.from({ length: count }, (_, j) => seq.rows + j);
            const layerRows = evictor.layerRows(work, rows);
            const logits = model.forward({
              tokens: ids.subarray(i, i + count),
              positions: Int32Array.from({ length: count }, (_, j) => pos + j),
              rows,
              slots: new Int32Array(count).fill(slot),
              logitRows: Int32Array.from({ length: count }, (_, j) => j),
              ...(scores ? { scores } : {}),
              ...(layerRows ? { layerRows } : {}),
            }, kv.view());
            out.set(logits, i * vocab);
            seq.computed += count;
            seq.rows += count;
            evictor.afterStep(seq, count);
            i += count;
          }
          return out;
        },
        close: () => kv.close(),
      };
    },
  };
}
