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

export interface CapacityPoint {
  mix: string;
  manager: 'static' | 'paged' | 'virtual';
  pageBytes: number;
  sequences: number;
  storedBytes: number;
  activeBytes: number;
  wasteBytes: number;
  /** Waste in pages per (slot, layer, K/V) range. */
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

function measure(mix: LengthMix, m: KVCacheManager, manager: CapacityPoint['manager']): CapacityPoint {
  try {
    const sequences = fill(m, mix);
    const st = m.stats();
    const ranges = m.shape.layers * 2;
    const waste = st.activeBytes - st.storedBytes;
    return { mix: mix.name, manager, pageBytes: m.pageBytes, sequences, storedBytes: st.storedBytes, activeBytes: st.activeBytes,
      wasteBytes: waste, wastePagesPerRange: round(waste / m.pageBytes / (sequences * ranges)) };
  } finally {
    m.close();
  }
}

export function benchCapacity(shape: Omit<KVShape, 'maxSlots'>, budgetBytes: number, mixes: LengthMix[], opts: { blockSize: number; pageBytes: number }): CapacityPoint[] {
  const points: CapacityPoint[] = [];
  // Static backs maxContext per slot up front, so its slot count is the budget over one slot's bytes.
  const probe = new StaticKVManager({ ...shape, maxSlots: 1, prefault: false });
  const staticSlots = Math.floor(budgetBytes / (probe.pagesForTokens() * probe.pageBytes));
  probe.close();
  for (const mix of mixes) {
    process.stderr.write(`kv capacity: ${mix.name}\n`);
    const maxSlots = mix.lengths.length;
    points.push(measure(mix, new StaticKVManager({ ...shape, maxSlots: staticSlots, prefault: false }), 'static'));
    points.push(measure(mix, new PagedKVManager({ ...shape, maxSlots, budgetBytes, blockSize: opts.blockSize }), 'paged'));
    points.push(measure(mix, new VirtualKVManager({ ...shape, maxSlots, budgetBytes, pageSize: opts.pageBytes }), 'virtual'));
  }
  return points;
}
