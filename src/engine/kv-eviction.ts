// KV eviction inside the engine: which tokens of a step vote (add their attention weights to the row
// book), when a sequence's cache is cut down to its budget, and the compaction that gives the tail pages
// back to the pool in the same call. The policies themselves are plain functions (src/kv/eviction).
//
// Prompt-time policies (snapkv, chunkkv, pyramidkv) compress once, right after the prompt's last token is
// computed. Decode-time policies (sinks, h2o, tova) keep the sequence within its budget as it grows: a
// step that would take it past the budget first evicts down to budget - step tokens - a little slack, so
// that compaction runs every few steps rather than every step. Such a sequence is bounded: its prompt
// and its output may be longer than the context.
import type { BatchScores } from '../model/batch.js';
import { EVICTION_POLICIES, isEvictionPolicyName, type EvictionPolicy, type EvictionPolicyName } from '../kv/eviction/index.js';
import { mergeHeads, spreadHeads } from '../kv/eviction/merge-heads.js';
import { RowBook, type RowBookShape } from '../kv/eviction/row-book.js';
import type { GrowResult } from '../kv/manager.js';
import { RequestFaultError } from './error-kind.js';

/** What eviction reads and updates of a sequence (engine/sequence.ts has it; the quality bench drives its own). */
export interface EvictingSequence {
  readonly slot: number;
  /** Tokens run through the model. */
  readonly computed: number;
  /** Rows its slot holds. */
  rows: number;
  evictedTokens: number;
  readonly prompt: { readonly length: number };
  readonly eviction?: SequenceEviction;
}

/** The policy a request asks for: a name ('none' for the full cache) and a budget. */
export interface EvictionRequest {
  policy?: EvictionPolicyName | 'none';
  /** Tokens to keep (an integer >= MIN_KV_BUDGET), or a fraction of the prompt (0 < budget < 1). */
  budget?: number;
}

/** The smallest budget a sequence may be cut to, in tokens. */
export const MIN_KV_BUDGET = 16;
/** SnapKV's observation window (the last prompt tokens, which vote and are always kept). */
const OBSERVATION_WINDOW = 32;

/** A sequence's eviction settings, resolved against its prompt and the context. */
export interface SequenceEviction {
  readonly name: EvictionPolicyName;
  readonly policy: EvictionPolicy;
  /** Rows its cache keeps: at most (decode-time), or right after the prompt (prompt-time). */
  readonly budget: number;
  /** Kept within `budget` at every step, so its prompt and output may pass the context. */
  readonly bounded: boolean;
  /** Prompt-time policies: the observation window. */
  readonly window: number;
  /** Prompt-time policies: the prompt has been compressed (since the last admission). */
  compressed: boolean;
}

const fault = (message: string, param: string) => new RequestFaultError(message, 'invalid_value', param);

/** Checks a request's kv_policy / kv_budget (400s naming the field) and resolves the budget against the prompt. */
export function resolveEviction(req: EvictionRequest, promptTokens: number, maxContext: number): SequenceEviction | undefined {
  const name = req.policy ?? 'none';
  if (name !== 'none' && !isEvictionPolicyName(name)) {
    throw fault(`kv_policy must be one of none, ${Object.keys(EVICTION_POLICIES).join(', ')}; got ${JSON.stringify(name)}`, 'kv_policy');
  }
  const b = req.budget;
  if (b !== undefined && !(typeof b === 'number' && Number.isFinite(b) && b > 0 && (b < 1 || (Number.isInteger(b) && b >= MIN_KV_BUDGET)))) {
    throw fault(`kv_budget must be a whole number of tokens (at least ${MIN_KV_BUDGET}) or a fraction of the prompt between 0 and 1; got ${JSON.stringify(b)}`, 'kv_budget');
  }
  if (name === 'none') return undefined;
  const policy = EVICTION_POLICIES[name];
  const bounded = policy.when === 'decode';
  // Without a budget: decode-time policies keep the context full (a context shift); prompt-time ones keep half the prompt.
  const wanted = b === undefined ? (bounded ? maxContext : Math.ceil(promptTokens / 2)) : b < 1 ? Math.ceil(b * promptTokens) : b;
  const budget = Math.min(maxContext, Math.max(MIN_KV_BUDGET, wanted));
  return { name, policy, budget, bounded, window: Math.min(OBSERVATION_WINDOW, Math.floor(budget / 2)), compressed: false };
}

/** Whether a policy name keeps a sequence within its budget at every step (so its prompt may pass the context). */
export function boundsContext(name: string | undefined): boolean {
  return name !== undefined && isEvictionPolicyName(name) && EVICTION_POLICIES[name].when === 'decode';
}

/** The most tokens of a bounded sequence one step may compute: half its budget, so eviction leaves room. */
export function stepTokenLimit(seq: EvictingSequence): number {
  const e = seq.eviction;
  return e?.bounded ? Math.max(1, Math.floor(e.budget / 2)) : Infinity;
}

export interface EvictionStats {
  /** Compactions run. */
  compactions: number;
  /** Tokens dropped from sequences' caches (per sequence, not per head). */
  evictedTokens: number;
  /** Pool pages that compactions gave back. */
  freedPages: number;
}

/** Where the engine's KV cache is compacted (ManagedKV over its manager). */
export interface CompactTarget {
  /** Keeps rows per (layer, KV head) lists, or per layer lists when the rows cannot be split by head. */
  compact(slot: number, lists: Int32Array[][] | Int32Array[]): GrowResult;
  freePages(): number;
  /** Whether each KV head may keep different rows (the format's blocks do not span heads). */
  readonly perHead: boolean;
}

export class KVEviction {
  private book: RowBook | undefined;
  /**
   * Per [slot][layer], how many rows the layer holds fewer than its slot (PyramidKV keeps fewer rows in
   * higher layers): the layer's rows past slot rows - deficit are unused, and its next token goes there.
   */
  private readonly deficits: Int32Array;
  readonly stats: EvictionStats = { compactions: 0, evictedTokens: 0, freedPages: 0 };

  constructor(private readonly shape: RowBookShape, private readonly target: CompactTarget) {
    this.deficits = new Int32Array(shape.maxSlots * shape.layers);
  }

  private slotDeficits(slot: number): Int32Array {
    return this.deficits.subarray(slot * this.shape.layers, (slot + 1) * this.shape.layers);
  }

  /** The row book, made on first use (it is as large as the cache's row count, times 8 bytes per head). */
  private rowBook(): RowBook {
    return (this.book ??= new RowBook(this.shape));
  }

  /** A sequence got its slot holding its first `seq.rows` tokens in position order. */
  admitted(seq: EvictingSequence): void {
    // Every admission: a slot may come from a sequence whose layers kept different row counts.
    this.slotDeficits(seq.slot).fill(0);
    if (!seq.eviction) return;
    seq.eviction.compressed = false;
    this.rowBook().reset(seq.slot, seq.rows);
  }

  /** `child` starts from `parent`'s rows. */
  forked(parent: EvictingSequence, child: EvictingSequence): void {
    this.slotDeficits(child.slot).set(this.slotDeficits(parent.slot));
    if (!parent.eviction || !child.eviction) return;
    child.eviction.compressed = parent.eviction.compressed;
    this.rowBook().copySlot(parent.slot, child.slot, parent.rows);
  }

  /**
   * Before a step computes `count` tokens of a bounded sequence: evicts down to the budget minus them
   * (and some slack) if they would pass it. False when the compaction needed pages the pool lacks.
   */
  makeRoom(seq: EvictingSequence, count: number): boolean {
    const e = seq.eviction;
    if (!e?.bounded || seq.rows + count <= e.budget) return true;
    const slack = Math.max(1, Math.floor(e.budget / 32));
    return this.evict(seq, Math.max(1, e.budget - count - slack));
  }

  /** The step's voting tokens (policy by policy) and the accumulators they add into; undefined when none vote. */
  votes(work: readonly { seq: EvictingSequence; count: number }[]): BatchScores | undefined {
    const n = work.reduce((sum, w) => sum + w.count, 0);
    let voters: Int32Array | undefined;
    let row = 0;
    for (const { seq, count } of work) {
      const e = seq.eviction;
      const from = e ? this.firstVoter(seq, e, count) : count;
      if (from < count) {
        voters ??= new Int32Array(n).fill(-1);
        voters.fill(seq.slot, row + from, row + count);
        if (e!.policy.scores === 'last') this.rowBook().clearScores(seq.slot, seq.rows);
      }
      row += count;
    }
    if (!voters) return undefined;
    const book = this.rowBook();
    return { voters, acc: (layer) => book.scores(layer), stride: book.stride };
  }

  /**
   * Each layer's cache rows for a batch whose slot rows are `rows`, where a sequence in it keeps fewer
   * rows in some layers; undefined when none does (every layer uses `rows`).
   */
  layerRows(work: readonly { seq: EvictingSequence; count: number }[], rows: Int32Array): ((layer: number) => Int32Array) | undefined {
    if (!work.some(({ seq }) => this.slotDeficits(seq.slot).some((d) => d > 0))) return undefined;
    const perLayer = Array.from({ length: this.shape.layers }, (_, layer) => {
      const out = Int32Array.from(rows);
      let at = 0;
      for (const { seq, count } of work) {
        const d = this.slotDeficits(seq.slot)[layer]!;
        for (let i = 0; i < count; i++) out[at + i]! -= d;
        at += count;
      }
      return out;
    });
    return (layer) => perLayer[layer]!;
  }

  /** Index (within its `count` tokens this step) of the sequence's first voting token; count = none. */
  private firstVoter(seq: EvictingSequence, e: SequenceEviction, count: number): number {
    switch (e.policy.scores) {
      case 'accumulate':
        return 0;
      case 'last':
        return count - 1;
      case 'window': {
        if (e.compressed) return count;
        const start = seq.prompt.length - e.window;
        return Math.min(count, Math.max(0, start - seq.computed));
      }
      case 'none':
        return count;
    }
  }

  /** After a step computed `count` tokens of `seq` (computed and rows already advanced). */
  afterStep(seq: EvictingSequence, count: number): void {
    const e = seq.eviction;
    if (!e) return;
    this.rowBook().record(seq.slot, seq.rows - count, seq.computed - count, count, this.slotDeficits(seq.slot));
    if (e.policy.when === 'prompt' && !e.compressed && seq.computed >= seq.prompt.length) {
      e.compressed = true;
      if (seq.rows > e.budget) this.evict(seq, e.budget);
    }
  }

  /** Cuts `seq`'s cache to `keep` rows with its policy; false (nothing changed) when the pool lacked pages for copies. */
  private evict(seq: EvictingSequence, keep: number): boolean {
    const e = seq.eviction!;
    const book = this.rowBook();
    const rows = seq.rows;
    const input = book.input(seq.slot, rows, keep, e.window);
    const perHead = this.target.perHead || input.kvHeads === 1;
    const sets = perHead ? e.policy.select(input) : spreadHeads(e.policy.select(mergeHeads(input)), input.kvHeads);
    const lists = book.moveLists(sets, rows);
    // Layers that keep fewer rows than the most any keeps (PyramidKV) pad their lists with rows left in
    // place: the slot holds the longest layer's rows, and each layer remembers how many of them it uses.
    const counts = lists.map((heads) => heads[0]!.length);
    const kept = Math.max(...counts);
    const padded = lists.map((heads) => heads.map((list) => (list.length === kept ? list : padList(list, kept))));
    const before = this.target.freePages();
    if (!this.target.compact(seq.slot, perHead ? padded : padded.map((heads) => heads[0]!)).ok) return false;
    book.applyMoves(seq.slot, rows, lists);
    const deficits = this.slotDeficits(seq.slot);
    counts.forEach((n, layer) => (deficits[layer] = kept - n));
    seq.rows = kept;
    const dropped = rows - Math.round(counts.reduce((a, b) => a + b, 0) / counts.length);
    seq.evictedTokens += dropped;
    this.stats.compactions++;
    this.stats.evictedTokens += dropped;
    this.stats.freedPages += Math.max(0, this.target.freePages() - before);
    return true;
  }
}

/** `list` extended to `length` entries that leave their rows in place (rows the layer no longer uses). */
function padList(list: Int32Array, length: number): Int32Array {
  const out = new Int32Array(length);
  out.set(list);
  for (let i = list.length; i < length; i++) out[i] = i;
  return out;
}
