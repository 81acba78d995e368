// Capacity (`npm run bench -- kv`, part c): how many concurrent sequences of a realistic length mix fit
// one KV budget under static, paged and virtual management, counted by the managers themselves: admit
// sequences one by one (allocSlot + step to the sequence's length) until the pool refuses. Also the bytes
// each holds beyond what the stored tokens need (activeBytes - storedBytes), per (slot, layer, K/V).
// With KV formats, the same count per cache type: how many more sequences a smaller row admits.
import { readFileSync } from 'node:fs';
import { groupTokensOf, isKIVIType, kvTypeLabel, type KVType } from '../src/kv/format.js';
import type { KVCacheManager } from '../src/kv/index.js';
import { PagedKVManager, StaticKVManager, VirtualKVManager } from '../src/kv/index.js';
import type { KVShape } from '../src/kv/shape.js';
import { Xorshift128 } from './random-weights.js';
import { markdownTable } from './report.js';
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

/**
 * Admits sequences until the pool refuses one. A cache with a residual window (KIVI) also spends an f16
 * ring per sequence outside the pool: those bytes count against the same budget.
 */
function fill(m: KVCacheManager, mix: LengthMix, budgetBytes = Infinity): number {
  const lens = new Int32Array(m.shape.maxSlots);
  const ringBytes = m.stats().residualBytes / m.shape.maxSlots;
  let admitted = 0;
  for (const len of mix.lengths) {
    const slot = m.allocSlot();
    if (slot === null) break;
    lens.fill(0);
    lens[slot] = len;
    if (!m.step(lens).ok) break;
    if (ringBytes > 0 && m.stats().usedPages * m.pageBytes + (admitted + 1) * ringBytes > budgetBytes) break;
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

function measure(mix: LengthMix, m: KVCacheManager, budgetBytes?: number): Fill {
  try {
    const sequences = fill(m, mix, budgetBytes);
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
function measureOrders(orders: LengthMix[], make: () => KVCacheManager, budgetBytes?: number): { fills: Fill[]; pageBytes: number } {
  let pageBytes = 0;
  const fills = orders.map((o) => {
    const m = make();
    pageBytes = m.pageBytes;
    return measure(o, m, budgetBytes);
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

/** One manager (at one page size) storing one KV type, on one length mix; vsF32 against the same manager and page setting storing f32. */
export interface FormatCapacityPoint extends CapacityPoint {
  kvType: string;
  /** The manager's setting, the same for every type ("block 16 tokens", "page 65536 B", "default page"): paged blocks and default pages differ in bytes per type. */
  setting: string;
  vsF32?: number;
}

/**
 * Admits each mix's orders under paged (blockSize) and virtual management at each of `pageSizes` (0: the
 * manager's default for the budget), once per KV type: the format dimension of the capacity comparison.
 */
export function benchFormatCapacity(shape: Omit<KVShape, 'maxSlots' | 'type'>, budgetBytes: number, mixes: LengthMix[][], opts: { types: KVType[]; blockSize: number; pageSizes: number[] }): FormatCapacityPoint[] {
  const points: FormatCapacityPoint[] = [];
  for (const orders of mixes) {
    const name = orders[0]!.name;
    const maxSlots = Math.max(...orders.map((o) => o.lengths.length));
    // KIVI also at a residual window of 32 tokens: its f16 ring is a large part of a sequence's bytes.
    const variants = opts.types.flatMap((type) => [
      { type, residual: undefined as number | undefined, kvType: kvTypeLabel(type) },
      ...(isKIVIType(type) ? [{ type, residual: 32, kvType: `${kvTypeLabel(type)} (R=32)` }] : []),
    ]);
    for (const { type, residual, kvType } of variants) {
      process.stderr.write(`kv capacity: ${name}, ${kvType}\n`);
      const add = (manager: CapacityPoint['manager'], setting: string, r: { fills: Fill[]; pageBytes: number }, pageChoice?: string) =>
        points.push({ ...summarize(name, manager, r.pageBytes, r.fills, pageChoice), kvType, setting });
      // KIVI's per-channel keys need blocks of whole 32-token groups.
      const blockSize = Math.max(opts.blockSize, groupTokensOf(type));
      const typed = { ...shape, type, residual };
      add('paged', `block ${opts.blockSize} tokens`, measureOrders(orders, () => new PagedKVManager({ ...typed, maxSlots, budgetBytes, blockSize }), budgetBytes));
      for (const pageSize of opts.pageSizes) {
        const r = measureOrders(orders, () => new VirtualKVManager({ ...typed, maxSlots, budgetBytes, ...(pageSize > 0 ? { pageSize } : {}) }), budgetBytes);
        add('virtual', pageSize > 0 ? `page ${pageSize} B` : 'default page', r, pageSize > 0 ? undefined : 'default');
      }
    }
  }
  return points.map((p) => {
    const f32 = points.find((q) => q.mix === p.mix && q.manager === p.manager && q.setting === p.setting && q.kvType === 'f32');
    return f32 ? { ...p, vsF32: round(p.meanSequences / f32.meanSequences, 4) } : p;
  });
}

/**
 * Sequences admitted per KV type against f32 (f16, q8_0, q4_0 and KIVI-2 store 1/2, 17/64, 9/64 and 3/32 of
 * f32's bytes; KIVI also keeps an f16 ring of its residual window per sequence).
 */
const FORMAT_CAPACITY_TARGETS: Record<string, number> = { f16: 1.98, 'q8_0': 3.6, 'q4_0': 6.0, kivi2: 8, 'kivi2 (R=32)': 8 };

export function formatCapacityMarkdown(points: readonly FormatCapacityPoint[]): string[] {
  const kib = (b: number) => (b >= 1 << 20 ? `${b / 2 ** 20} MiB` : `${b / 1024} KiB`);
  const layout = (p: FormatCapacityPoint) => (p.manager === 'paged' ? `paged, ${kib(p.pageBytes)} blocks` : `virtual, ${kib(p.pageBytes)} pages${p.pageChoice ? ` (${p.pageChoice})` : ''}`);
  const table = markdownTable(
    ['length mix', 'manager', 'KV type', 'sequences (mean)', 'min-max', 'x f32', 'unused MiB', 'unused pages / (slot, layer, K/V)'],
    points.map((p) => [p.mix, layout(p), p.kvType, round(p.meanSequences, 4), `${Math.min(...p.sequences)}-${Math.max(...p.sequences)}`,
      p.vsF32 === undefined ? '—' : `${p.vsF32}x`, round(p.wasteBytes / 2 ** 20), p.wastePagesPerRange]),
  );
  // One line per (mix, manager setting): each targeted type's ratio and whether it reaches its target.
  const groups = [...new Map(points.map((p) => [`${p.mix}|${p.manager}|${p.setting}`, p])).values()];
  const verdicts = groups.flatMap((g) => {
    const parts = points.filter((p) => p.mix === g.mix && p.manager === g.manager && p.setting === g.setting)
      .filter((p) => FORMAT_CAPACITY_TARGETS[p.kvType] !== undefined && p.vsF32 !== undefined)
      .map((p) => `${p.kvType} ${p.vsF32}x (>= ${FORMAT_CAPACITY_TARGETS[p.kvType]}: ${p.vsF32! >= FORMAT_CAPACITY_TARGETS[p.kvType]! ? 'met' : '**not met**'})`);
    return parts.length ? [`- ${g.mix}, ${g.manager} ${g.setting}: ${parts.join('; ')}`] : [];
  });
  return [table, '', ...verdicts];
}
