// What collecting attention scores for KV eviction costs (Backend.attention's AttentionScores): native
// decode attention alone against the same call with every token voting, on TinyLlama's attention shape
// over an f16 cache written by kvStore (a VirtualKVManager's, as the engine runs it). The two run back to
// back in each repeat, in alternating order, with the CPU caches evicted before every call so the KV is
// read from memory as in a model step; the share is taken within a repeat, so drifts of the host's speed
// between repeats do not leak into it.
import type { AttentionScores, ContiguousKV } from '../src/backend/backend.js';
import { NativeBackend } from '../src/backend/native/native-backend.js';
import { resolveShape, tokenBytes } from '../src/kv/shape.js';
import { VirtualKVManager } from '../src/kv/virtual-kv.js';
import { fillFloats } from './attention-rounds.js';
import { TINYLLAMA_ATTENTION } from './kv-attention.js';
import { median, round } from './stats.js';
import { evictCaches, timeOp } from './timing.js';

const PAGE_BYTES = 64 << 10;

export interface ScoreCostOptions {
  /** Decode tokens in the batch, one per sequence. */
  seqs: number;
  /** Rows each token attends. */
  context: number;
  /** Back-to-back pairs of measurements. */
  repeats: number;
}

export interface ScoreCost {
  /** Per repeat, the median call time of attention alone (ms). */
  attentionMs: number[];
  /** Per repeat, the same with every token voting into its own accumulator (ms). */
  withScoresMs: number[];
  /** Median over repeats of (with scores - alone) / alone. */
  shareMedian: number;
}

/** `seqs` sequences of `context` rows of f16 K and V, every row written by kvStore. */
function f16Cache(backend: NativeBackend, seqs: number, context: number): { view: ContiguousKV; manager: VirtualKVManager } {
  const s = TINYLLAMA_ATTENTION;
  const shape = { layers: 1, kvHeads: s.nKVHeads, headDim: s.headDim, maxSlots: seqs, maxContext: context, type: { k: 'f16', v: 'f16' } } as const;
  // Rows never straddle pages, so a page can hold a little less than its bytes' worth: two pages spare.
  const perRange = (Math.ceil((context * tokenBytes(resolveShape(shape))) / PAGE_BYTES) + 2) * PAGE_BYTES;
  const manager = new VirtualKVManager({ ...shape, pageSize: PAGE_BYTES, budgetBytes: seqs * perRange * 2 });
  try {
    for (let i = 0; i < seqs; i++) manager.allocSlot();
    if (!manager.step(new Int32Array(seqs).fill(context)).ok) throw new Error('score cost bench: pool too small');
    const view = manager.view();
    const row = s.nKVHeads * s.headDim;
    const k = new Float32Array(context * row), v = new Float32Array(context * row);
    fillFloats(k, 1);
    fillFloats(v, 2);
    const rows = Int32Array.from({ length: context }, (_, i) => i);
    for (let slot = 0; slot < seqs; slot++) backend.kvStore(view, 0, k, v, new Int32Array(context).fill(slot), rows);
    return { view, manager };
  } catch (e) {
    manager.close();
    throw e;
  }
}

export async function measureScoreCost(opts: ScoreCostOptions): Promise<ScoreCost> {
  const { seqs, context, repeats } = opts;
  const s = TINYLLAMA_ATTENTION;
  const backend = new NativeBackend();
  const { view, manager } = f16Cache(backend, seqs, context);
  try {
    const slots = Int32Array.from({ length: seqs }, (_, i) => i);
    const rows = new Int32Array(seqs).fill(context - 1);
    const q = new Float32Array(seqs * s.nHeads * s.headDim);
    fillFloats(q, 3);
    const out = new Float32Array(q.length);
    // Each sequence votes into its own accumulator, as a per-sequence policy (H2O, TOVA) does.
    const scores: AttentionScores = { voters: slots.slice(), acc: new Float32Array(seqs * s.nKVHeads * context), stride: context };
    const plain = () => backend.attention(out, q, view, 0, slots, rows, s);
    const voting = () => backend.attention(out, q, view, 0, slots, rows, s, scores);
    const attentionMs: number[] = [], withScoresMs: number[] = [];
    for (let r = 0; r < repeats; r++) {
      const time = (op: () => void) => timeOp(op, 3, 60, evictCaches).medianMs;
      if (r % 2 === 0) {
        attentionMs.push(time(plain));
        withScoresMs.push(time(voting));
      } else {
        withScoresMs.push(time(voting));
        attentionMs.push(time(plain));
      }
      // Lets a caller's progress output and timers run between repeats.
      await new Promise((resolve) => setImmediate(resolve));
    }
    const shares = attentionMs.map((ms, i) => (withScoresMs[i]! - ms) / ms);
    return { attentionMs: attentionMs.map((x) => round(x)), withScoresMs: withScoresMs.map((x) => round(x)), shareMedian: round(median(shares)) };
  } finally {
    manager.close();
  }
}
