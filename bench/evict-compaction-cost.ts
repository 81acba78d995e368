// What one compact() call costs an eviction policy on TinyLlama's KV shape (22 layers, 4 KV heads of 64,
// f16, maxContext 4096): a slot filled to `tokens` is compacted to `kept` with a different random choice
// per (layer, KV head), ascending, as SnapKV-style policies pick; only the call is timed. Also reports the
// pages that call gave back (one page = one (layer, K/V) page of the manager: a pool page for virtual, a
// block's share for paged). Not wired into the bench CLI: import it.
import { kvRowOffset } from '../src/backend/kv-rows.js';
import { Rng } from '../src/engine/rng.js';
import { PagedKVManager, VirtualKVManager, type KVCacheManager } from '../src/kv/index.js';
import { bytesPerToken, resolveShape } from '../src/kv/shape.js';
import { median } from './stats.js';

export interface CompactionCostOptions {
  manager: 'virtual' | 'paged';
  tokens: number;
  kept: number;
  repeats: number;
}

export interface CompactionCost {
  medianMs: number;
  minMs: number;
  maxMs: number;
  /** Pages the (last) timed call gave back to the pool: freeAfter - freeBefore. */
  freedPages: number;
  freeBefore: number;
  freeAfter: number;
}

const TINYLLAMA = { layers: 22, kvHeads: 4, headDim: 64, maxSlots: 1, maxContext: 4096, type: { k: 'f16', v: 'f16' } } as const;

export function measureCompactionCost(opts: CompactionCostOptions): CompactionCost {
  const { tokens, kept, repeats } = opts;
  if (!(Number.isInteger(tokens) && tokens > 0 && tokens <= TINYLLAMA.maxContext)) throw new RangeError(`tokens must be 1..${TINYLLAMA.maxContext}, got ${tokens}`);
  if (!(Number.isInteger(kept) && kept >= 0 && kept <= tokens)) throw new RangeError(`kept must be 0..tokens, got ${kept}`);
  if (!(Number.isInteger(repeats) && repeats >= 1)) throw new RangeError(`repeats must be a positive integer, got ${repeats}`);
  // Room for one full slot, plus slack for the virtual manager's page rounding.
  const budgetBytes = Math.ceil(bytesPerToken(resolveShape(TINYLLAMA)) * TINYLLAMA.maxContext * 1.25);
  const kv: KVCacheManager = opts.manager === 'virtual'
    ? new VirtualKVManager({ ...TINYLLAMA, budgetBytes })
    : new PagedKVManager({ ...TINYLLAMA, budgetBytes });
  const rng = new Rng(42);
  const times: number[] = [];
  let freeBefore = 0, freeAfter = 0;
  try {
    for (let r = 0; r < repeats; r++) {
      const slot = kv.allocSlot()!;
      const lens = Int32Array.of(tokens);
      if (!kv.step(lens).ok) throw new Error(`the pool cannot hold ${tokens} tokens`);
      fillRows(kv, slot, tokens, r);
      const keep = Array.from({ length: TINYLLAMA.layers }, () => Array.from({ length: TINYLLAMA.kvHeads }, () => randomAscending(rng, tokens, kept)));
      freeBefore = kv.freePages();
      const t0 = performance.now();
      const result = kv.compact(slot, keep);
      times.push(performance.now() - t0);
      freeAfter = kv.freePages();
      if (!result.ok) throw new Error('compact was refused (no shared pages here, so it should not be)');
      kv.freeSlot(slot);
    }
  } finally {
    kv.close();
  }
  return { medianMs: median(times), minMs: Math.min(...times), maxMs: Math.max(...times), freedPages: freeAfter - freeBefore, freeBefore, freeAfter };
}

/** Touches every row the slot holds, so the moves read and write backed memory, as after a prefill. */
function fillRows(kv: KVCacheManager, slot: number, tokens: number, seed: number): void {
  const view = kv.view();
  const rowBytes = view.rowBytes;
  for (let layer = 0; layer < kv.shape.layers; layer++) {
    for (const a of [view.keys(layer), view.values(layer)]) {
      for (let pos = 0; pos < tokens; pos++) {
        const at = kvRowOffset(view, slot, pos);
        a.fill((pos + seed) & 255, at, at + rowBytes);
      }
    }
  }
}

/** `kept` distinct positions of 0..tokens-1, chosen uniformly, ascending (a partial Fisher-Yates shuffle). */
function randomAscending(rng: Rng, tokens: number, kept: number): Int32Array {
  const all = Int32Array.from({ length: tokens }, (_, i) => i);
  for (let i = 0; i < kept; i++) {
    const j = i + Math.floor(rng.next() * (tokens - i));
    const t = all[i]!;
    all[i] = all[j]!;
    all[j] = t;
  }
  return all.slice(0, kept).sort();
}
