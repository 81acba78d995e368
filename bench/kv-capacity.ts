// Capacity (`npm run bench -- kv`, part c): how many concurrent sequences of a realistic length mix fit
// one KV budget under static, paged and virtual management, counted by the managers themselves: admit
// sequences one by one (allocSlot + step to the sequence's length) until the pool refuses. Also the bytes
// each holds beyond what the stored tokens need (activeBytes - storedBytes), per (slot, layer, K/V).
import { readFileSync } from 'node:fs';
import type { KVCacheManager } from '../src/kv/index.js';
import { PagedKVManager, StaticKVManager, VirtualKVManager } from '../src/kv/index.js';
import type { KVShape } from '../src/kv/shape.js';
import { Xorshift128 } from './random-weights.js';
import { round } from './stats.js';

export interface LengthMix {
  name: string;
  /** Sampled sequence lengths, in admission order. */
  lengths: number[];
  mean: number;
}

/** One manager (at one page size) on one length mix: what it admitted in each sampled order. */
export interface CapacityPoint {
  mix: string;
  manager: 'static' | 'paged' | 'virtual';
  pageBytes: number;
  /** Why this page size ('default': what VirtualKVManager picks for the budget on this machine). */
  pageChoice?: string;
  /** Sequences admitted, one entry per sampled order (seed). */
  sequences: number[];
  meanSequences: number;
  /** Bytes mapped beyond the stored tokens, mean over the orders. */
  wasteBytes: number;
  /** Waste in pages per (slot, layer, K/V) range, mean over the orders. */
  wastePagesPerRange: number;
}

/** num_total_tokens of every trace row, clipped to maxContext. */
export function traceLengths(csvPath: string, maxContext: number): number[] {
  const [header, ...rows] = readFileSync(csvPath, 'utf8').trim().split('\n');
  const col = header!.split(',').indexOf('num_total_tokens');
  if (col < 0) throw new Error(`${csvPath}: no num_total_tokens column`);
  return rows.map((r) => Math.min(maxContext, Number(r.split(',')[col])));
}

/** `count` lengths drawn (with replacement, seeded) from `pool`. */
export function sampleMix(name: string, pool: number[], count: number, seed: number): LengthMix {
  const rng = new Xorshift128(seed);
  const lengths = Array.from({ length: count }, () => pool[rng.next() % pool.length]!);
  return { name, lengths, mean: round(lengths.reduce((a, b) => a + b, 0) / count) };
}

function fill(m: KVCacheManager, mix: LengthMix): number {
  const lens = new Int32Array(m.shape.maxSlots);
  let admitted = 0;
  for (const len of mix.lengths) {
    const slot = m.allocSlot();
    if (slot === null) break;
    lens.fill(0);
    lens[slot] = len;
    if (!m.step(lens).ok) break;
    admitted++;
  }
  if (admitted === mix.lengths.length) throw new Error(`capacity: the ${mix.lengths.length} sampled lengths all fit; sample more`);
  return admitted;
}

interface Fill {
  sequences: number;
  wasteBytes: number;
  wastePagesPerRange: number;
}

function measure(mix: LengthMix, m: KVCacheManager): Fill {
  try {
    const sequences = fill(m, mix);
    const st = m.stats();
    const waste = st.activeBytes - st.storedBytes;
    return { sequences, wasteBytes: waste, wastePagesPerRange: waste / m.pageBytes / (sequences * m.shape.layers * 2) };
  } finally {
    m.close();
  }
}

function summarize(name: string, manager: CapacityPoint['manager'], pageBytes: number, fills: Fill[], pageChoice?: string): CapacityPoint {
  const mean = (f: (x: Fill) => number) => fills.reduce((a, x) => a + f(x), 0) / fills.length;
  return {
    mix: name, manager, pageBytes, ...(pageChoice ? { pageChoice } : {}),
    sequences: fills.map((f) => f.sequences),
    meanSequences: mean((f) => f.sequences),
    wasteBytes: round(mean((f) => f.wasteBytes)),
    wastePagesPerRange: round(mean((f) => f.wastePagesPerRange)),
  };
}

/** Fills a fresh manager from make() with each order; the page size is the managers'. */
function measureOrders(orders: LengthMix[], make: () => KVCacheManager): { fills: Fill[]; pageBytes: number } {
  let pageBytes = 0;
  const fills = orders.map((o) => {
    const m = make();
    pageBytes = m.pageBytes;
    return measure(o, m);
  });
  return { fills, pageBytes };
}

/**
 * Admits each mix's orders (one LengthMix per seed, same name) under static, paged (blockSize) and
 * virtual management at each of `pageSizes` (0: the manager's default for the budget).
 */
export function benchCapacity(shape: Omit<KVShape, 'maxSlots'>, budgetBytes: number, mixes: LengthMix[][], opts: { blockSize: number; pageSizes: number[] }): CapacityPoint[] {
  const points: CapacityPoint[] = [];
  // Static backs maxContext per slot up front, so its slot count is the budget over one slot's bytes.
  const probe = new StaticKVManager({ ...shape, maxSlots: 1, prefault: false });
  const staticSlots = Math.floor(budgetBytes / (probe.pagesForTokens() * probe.pageBytes));
  probe.close();
  for (const orders of mixes) {
    const name = orders[0]!.name;
    process.stderr.write(`kv capacity: ${name}\n`);
    const maxSlots = Math.max(...orders.map((o) => o.lengths.length));
    const add = (manager: CapacityPoint['manager'], r: { fills: Fill[]; pageBytes: number }, pageChoice?: string) =>
      points.push(summarize(name, manager, r.pageBytes, r.fills, pageChoice));
    add('static', measureOrders(orders, () => new StaticKVManager({ ...shape, maxSlots: staticSlots, prefault: false })));
    add('paged', measureOrders(orders, () => new PagedKVManager({ ...shape, maxSlots, budgetBytes, blockSize: opts.blockSize })));
    for (const pageSize of opts.pageSizes) {
      const r = measureOrders(orders, () => new VirtualKVManager({ ...shape, maxSlots, budgetBytes, ...(pageSize > 0 ? { pageSize } : {}) }));
      add('virtual', r, pageSize > 0 ? undefined : 'default');
    }
  }
  return points;
}
