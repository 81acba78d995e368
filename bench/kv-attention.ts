// Attention throughput, contiguous vs paged kernel, on the native backend (`npm run bench -- kv`, part a).
// Both kernels share their loop (native/attention_core.h); the paged one finds each run of blockSize
// positions through the block table. The contiguous cache is a VirtualKVManager's (memfd pool, 64 KiB
// pages mapped into each slot's range), the paged one a PagedKVManager's whose slots grew one block at a
// time in turn ('fresh': a slot's blocks interleaved with the others'), or a pool whose blocks were
// handed out in a random order ('fragmented': a long-running server's free list).
import { alignedBytes } from '../src/backend/aligned-array.js';
import type { AttentionShape, Backend, KVView, PagedKV } from '../src/backend/backend.js';
import { kvFormat, type KVType } from '../src/kv/format.js';
import { PagedKVManager } from '../src/kv/paged-kv.js';
import { VirtualKVManager } from '../src/kv/virtual-kv.js';
import { fillFloats, timeInRounds } from './attention-rounds.js';
import { median, round } from './stats.js';

/** TinyLlama-1.1B's attention: 32 query heads, 4 KV heads of 64. */
export const TINYLLAMA_ATTENTION: AttentionShape = { nHeads: 32, nKVHeads: 4, headDim: 64, scale: 1 / 8 };

/** Rounds per point by default: enough for the median of per-round ratios to settle on this noisy host. */
export const DEFAULT_ROUNDS = 11;

export interface AttentionPoint {
  phase: 'decode' | 'prefill';
  /** Sequences (decode) or 1 (prefill). */
  batch: number;
  /** Context per sequence (decode), or the chunk length from position 0 (prefill). */
  context: number;
  contiguousMs: number;
  /** Per block size and pool, the paged kernel: ms: median over rounds; ratio: median of the rounds' paged / contiguous time ratios (listed in ratios). */
  paged: { blockSize: number; pool: PagedPool; ms: number; ratio: number; ratios: number[] }[];
}

/** This comparison of layouts runs on f32 caches (the KV formats have their own bench). */
const F32: KVType = { k: 'f32', v: 'f32' };

/** A cheap repeating pseudo-random fill of an f32 cache (values do not change the speed, only need to be finite). */
function fill(bytes: Uint8Array, seed: number): void {
  fillFloats(new Float32Array(bytes.buffer, bytes.byteOffset, bytes.byteLength >> 2), seed);
}

/** The contiguous layout as vserve runs it: a VirtualKVManager (memfd pool, 64 KiB pages) grown to `tokens` per slot. */
function virtualCache(slots: number, tokens: number, s: AttentionShape): { view: KVView; manager: VirtualKVManager } {
  const page = 64 << 10;
  const perRange = Math.ceil((tokens * s.nKVHeads * s.headDim * 4) / page) * page;
  const m = new VirtualKVManager({ layers: 1, kvHeads: s.nKVHeads, headDim: s.headDim, maxSlots: slots, maxContext: tokens, type: F32, pageSize: page, budgetBytes: slots * perRange * 2 });
  for (let i = 0; i < slots; i++) m.allocSlot();
  if (!m.step(new Int32Array(slots).fill(tokens)).ok) throw new Error('virtual bench cache: pool too small');
  const view = m.view();
  fill(view.keys(0), 1);
  fill(view.values(0), 2);
  return { view, manager: m };
}

/** How the paged pool's blocks were handed out: in turn to growing slots, or in a random order. */
export type PagedPool = 'fresh' | 'fragmented';

function pagedCache(slots: number, tokens: number, blockSize: number, s: AttentionShape, pool: PagedPool): KVView {
  return pool === 'fresh' ? freshPagedCache(slots, tokens, blockSize, s) : fragmentedPagedCache(slots, tokens, blockSize, s);
}

/**
 * A paged cache whose blocks come from the pool in a random order - the state of a server's free list
 * after many sequences of different lengths came and went - with the same block tables, pool layout and
 * kernel as PagedKVManager's (built here directly: the manager's allocator hands out blocks in order).
 */
function fragmentedPagedCache(slots: number, tokens: number, blockSize: number, s: AttentionShape): PagedKV {
  const perSlot = Math.ceil(tokens / blockSize), numBlocks = slots * perSlot;
  const rowBytes = s.nKVHeads * s.headDim * 4;
  const keys = alignedBytes(numBlocks * blockSize * rowBytes), values = alignedBytes(numBlocks * blockSize * rowBytes);
  fill(keys, 1);
  fill(values, 2);
  const ids = Int32Array.from({ length: numBlocks }, (_, i) => i);
  let x = 12345;
  for (let i = numBlocks - 1; i > 0; i--) {
    x = (Math.imul(x, 1664525) + 1013904223) >>> 0;
    const j = x % (i + 1);
    [ids[i], ids[j]] = [ids[j]!, ids[i]!];
  }
  return {
    layout: 'paged', maxSlots: slots, kvHeads: s.nKVHeads, headDim: s.headDim, blockSize, numBlocks, maxBlocksPerSlot: perSlot,
    keyFormat: kvFormat('f32'), valueFormat: kvFormat('f32'), rowBytes,
    keys: () => keys, values: () => values, blockTables: ids, seqLens: new Int32Array(slots).fill(tokens),
  };
}

/** A PagedKVManager's cache whose slots grew one block at a time in turn (blocks interleaved across slots). */
function freshPagedCache(slots: number, tokens: number, blockSize: number, s: AttentionShape): KVView {
  const bytes = slots * Math.ceil(tokens / blockSize) * blockSize * s.nKVHeads * s.headDim * 4 * 2;
  const m = new PagedKVManager({ layers: 1, kvHeads: s.nKVHeads, headDim: s.headDim, maxSlots: slots, maxContext: tokens, type: F32, blockSize, budgetBytes: bytes });
  for (let i = 0; i < slots; i++) m.allocSlot();
  const lens = new Int32Array(slots);
  for (let grown = blockSize; ; grown += blockSize) {
    lens.fill(Math.min(tokens, grown));
    if (!m.step(lens).ok) throw new Error('paged bench cache: pool too small');
    if (grown >= tokens) break;
  }
  const view = m.view();
  fill(view.keys(0), 1);
  fill(view.values(0), 2);
  return view;
}

function point(backend: Backend, phase: AttentionPoint['phase'], batch: number, context: number, opts: AttentionOptions, s: AttentionShape): AttentionPoint {
  const { blockSizes, pools } = opts;
  const contiguous = virtualCache(batch, context, s);
  const variants = blockSizes.flatMap((blockSize) => pools.map((pool) => ({ blockSize, pool })));
  const layouts: KVView[] = [contiguous.view, ...variants.map((v) => pagedCache(batch, context, v.blockSize, s, v.pool))];
  const [slots, positions] = phase === 'decode'
    ? [Int32Array.from({ length: batch }, (_, i) => i), new Int32Array(batch).fill(context - 1)]
    : [new Int32Array(context), Int32Array.from({ length: context }, (_, i) => i)];
  // Decode reads the cache from memory, as in a model step, where the whole model's weights (and every
  // other layer's KV) pass through the CPU caches between two calls on the same layer. A prefill
  // chunk's own K/V was written just before its attention, so it runs on warm caches.
  let rounds: number[][];
  try {
    rounds = timeInRounds(backend, layouts, slots, positions, s, phase === 'prefill' && context >= 2048 ? 1 : 3, phase === 'decode', opts.rounds);
  } finally {
    contiguous.manager.close();
  }
  const column = (i: number) => median(rounds.map((r) => r[i]!));
  return {
    phase, batch, context,
    contiguousMs: round(column(0)),
    paged: variants.map(({ blockSize, pool }, i) => {
      const ratios = rounds.map((r) => r[i + 1]! / r[0]!);
      return { blockSize, pool, ms: round(column(i + 1)), ratio: round(median(ratios)), ratios: ratios.map((x) => round(x)) };
    }),
  };
}

export interface AttentionOptions {
  batches: number[];
  contexts: number[];
  chunks: number[];
  blockSizes: number[];
  pools: PagedPool[];
  rounds: number;
}

export function benchAttention(backend: Backend, opts: AttentionOptions): AttentionPoint[] {
  const s = TINYLLAMA_ATTENTION;
  const points: AttentionPoint[] = [];
  for (const batch of opts.batches) {
    for (const context of opts.contexts) {
      process.stderr.write(`kv attention: decode batch ${batch}, context ${context}\n`);
      points.push(point(backend, 'decode', batch, context, opts, s));
    }
  }
  for (const chunk of opts.chunks) {
    process.stderr.write(`kv attention: prefill chunk ${chunk}\n`);
    points.push(point(backend, 'prefill', 1, chunk, opts, s));
  }
  return points;
}
