// Measures what mapping and unmapping pages costs the step loop of the virtual manager, for benchmarks
// (`npm run bench -- kv`) and the scripts in bench/. No assertions: it only reports.
import { VirtualKVManager } from './virtual-kv.js';

export interface MappingCostOptions {
  pageSize: number;
  /** Steps measured; each maps (then unmaps) one page per layer and K/V. */
  steps?: number;
  layers?: number;
  mode: 'sync' | 'async';
  /** Simulated compute per step (busy wait) that async mapping overlaps; default 100 µs. */
  computeUs?: number;
  /** Write into each new page, as the model would, outside the timed part (default true). */
  touch?: boolean;
}

export interface MappingCost {
  pageSize: number;
  mode: 'sync' | 'async';
  pagesPerStep: number;
  /**
   * Time the step loop was blocked per mapped page: step(), or stepAsync() + wait() after the compute.
   * Median over steps (a VM's scheduler hiccups make the mean noisy); the mean is given too.
   */
  blockedMapUsPerPage: number;
  blockedMapUsPerPageMean: number;
  /** Time inside mmap per page (on the background thread for async). */
  mmapUsPerPage: number;
  mmapCallsPerStep: number;
  /** Time the step loop was blocked per unmapped page (compact() dropping the last token), median. */
  blockedUnmapUsPerPage: number;
  munmapUsPerPage: number;
}

function spin(us: number): void {
  const end = process.hrtime.bigint() + BigInt(Math.round(us * 1000));
  while (process.hrtime.bigint() < end);
}

function median(values: number[]): number {
  const sorted = [...values].sort((a, b) => a - b);
  return sorted[Math.floor(sorted.length / 2)] ?? 0;
}

function nowUs(): number {
  return Number(process.hrtime.bigint()) / 1000;
}

export function measureMappingCost(options: MappingCostOptions): MappingCost {
  const steps = options.steps ?? 200;
  const layers = options.layers ?? 1;
  const computeUs = options.computeUs ?? 100;
  const pageSize = options.pageSize;
  // One token fills exactly one page, so every step maps one page per (layer, K/V).
  const kv = new VirtualKVManager({
    layers,
    kvHeads: pageSize / 1024,
    headDim: 256,
    maxSlots: 1,
    maxContext: steps + 1,
    pageSize,
    budgetBytes: (steps + 1) * pageSize * layers * 2,
    deferredReclaim: false,
  });
  try {
    const slot = kv.allocSlot()!;
    const view = kv.view();
    const lens = new Int32Array(1);
    const pagesPerStep = layers * 2;
    const floatsPerPage = pageSize / 4;
    const touch = (token: number): void => {
      if (options.touch === false) return;
      for (let layer = 0; layer < layers; layer++) {
        for (const a of [view.keys(layer), view.values(layer)]) {
          for (let i = 0; i < floatsPerPage; i += 1024) a[token * floatsPerPage + i] = 1;
        }
      }
    };
    const blockedMap: number[] = [];
    const before = kv.stats();
    for (let t = 1; t <= steps; t++) {
      lens[slot] = t;
      const start = nowUs();
      if (options.mode === 'sync') {
        kv.step(lens);
        blockedMap.push(nowUs() - start);
        spin(computeUs);
      } else {
        kv.stepAsync(lens);
        const submitted = nowUs() - start;
        spin(computeUs);
        const waitStart = nowUs();
        kv.wait();
        blockedMap.push(submitted + nowUs() - waitStart);
      }
      touch(t - 1);
    }
    const mapped = kv.stats();
    const blockedUnmap: number[] = [];
    for (let t = steps - 1; t >= 0; t--) {
      const keep = Int32Array.from({ length: t }, (_, i) => i);
      const start = nowUs();
      kv.compact(slot, keep);
      blockedUnmap.push(nowUs() - start);
    }
    const unmapped = kv.stats();
    const pages = steps * pagesPerStep;
    return {
      pageSize,
      mode: options.mode,
      pagesPerStep,
      blockedMapUsPerPage: median(blockedMap) / pagesPerStep,
      blockedMapUsPerPageMean: blockedMap.reduce((a, b) => a + b, 0) / pages,
      mmapUsPerPage: (mapped.mapNs - before.mapNs) / 1000 / pages,
      mmapCallsPerStep: (mapped.mapCalls - before.mapCalls) / steps,
      blockedUnmapUsPerPage: median(blockedUnmap) / pagesPerStep,
      munmapUsPerPage: (unmapped.unmapNs - mapped.unmapNs) / 1000 / pages,
    };
  } finally {
    kv.close();
  }
}
