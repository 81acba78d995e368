// Turns a step's work into one token-packed batch: each sequence's tokens back to back with their own
// positions, cache rows and KV slot, no padding. Logits are asked for only where a sequence's pending tokens end
// (its next token gets sampled); a prefill chunk that stops short of that needs none.
import type { Batch } from '../model/batch.js';
import type { StepWork } from './scheduler.js';

export interface PackedBatch {
  batch: Batch;
  /** The work items that sample a token, in the order of the batch's logit rows. */
  sampling: StepWork[];
}

export interface PackOptions {
  /**
   * Benchmark baseline only: pad every sequence's share to this many tokens, as a framework without
   * token packing must (pads sit after the real tokens, so causal attention leaves those unchanged).
   */
  padTo?: number;
  /** Token id used for padding (default 0). */
  padToken?: number;
  /** The selection layer of blended sequences' reused document tokens (BatchBlend.layer; default 1), and its stages. */
  blendLayer?: number;
  blendStages?: number;
}

export function packBatch(work: readonly StepWork[], opts: PackOptions = {}): PackedBatch {
  const rowsPer = (w: StepWork) => Math.max(w.count, opts.padTo ?? 0);
  const n = work.reduce((sum, w) => sum + rowsPer(w), 0);
  const tokens = new Int32Array(n);
  const positions = new Int32Array(n);
  const rows = new Int32Array(n);
  const slots = new Int32Array(n);
  const logitRows: number[] = [];
  const sampling: StepWork[] = [];
  // Made when a step holds a reused document token (a blended prompt's first pass), not for its decodes.
  let groups: Int32Array | undefined;
  const shares: number[] = [];
  let row = 0;
  for (const w of work) {
    const { seq, count } = w;
    const start = seq.computed;
    const share = rowsPer(w);
    let group = -1;
    for (let i = 0; i < share; i++, row++) {
      tokens[row] = i < count ? seq.tokenAt(start + i) : (opts.padToken ?? 0);
      positions[row] = start + i;
      rows[row] = seq.rows + i;
      slots[row] = seq.slot;
      if (seq.blend && i < count && inDocument(seq.blend.documents, start + i)) {
        groups ??= new Int32Array(n).fill(-1);
        if (group < 0) group = shares.push(seq.blend.recompute) - 1;
        groups[row] = group;
      }
    }
    // A chunk job only fills the chunk store: it samples nothing.
    if (start + count === seq.length && !seq.chunkJob) {
      logitRows.push(row - share + count - 1);
      sampling.push(w);
    }
  }
  const blend = groups && { groups, shares: Float64Array.from(shares), layer: opts.blendLayer ?? 1, stages: opts.blendStages ?? 1 };
  return { batch: { tokens, positions, rows, slots, logitRows: Int32Array.from(logitRows), ...(blend ? { blend } : {}) }, sampling };
}

/** Whether prompt token `t` lies in one of the (sorted) documents. */
function inDocument(documents: readonly { start: number; end: number }[], t: number): boolean {
  return documents.some((d) => t >= d.start && t < d.end);
}
