// Mapping cost per step of the virtual manager, sync vs async, as a share of step time (`npm run bench
// -- kv`, part b). Each measured step grows every (layer, K/V) range of one slot by one page - the case
// where a sequence crosses a page boundary in all 2 x layers ranges at once - while a busy wait of the
// step's length stands in for the model's compute, which async mapping overlaps.
import { measureMappingCost } from '../src/kv/index.js';
import { round } from './stats.js';

export interface MappingPoint {
  pageBytes: number;
  mode: 'sync' | 'async';
  stepMs: number;
  layers: number;
  pagesPerStep: number;
  /** Step-loop time blocked on mapping per step (median), and as a share of the step. */
  blockedUsPerStep: number;
  fractionOfStep: number;
  mmapUsPerPage: number;
}

export function benchMapping(opts: { pageSizes: number[]; stepMs: number[]; layers: number }): MappingPoint[] {
  const points: MappingPoint[] = [];
  for (const stepMs of opts.stepMs) {
    for (const pageBytes of opts.pageSizes) {
      for (const mode of ['sync', 'async'] as const) {
        process.stderr.write(`kv mapping: ${pageBytes >> 10} KiB pages, ${mode}, ${stepMs} ms steps\n`);
        // 2 MiB pages are not written (touch: false) to keep the pool's resident memory small; the
        // timed part, mapping, does not depend on it.
        const big = pageBytes >= 1 << 20;
        const r = measureMappingCost({ pageSize: pageBytes, mode, layers: opts.layers, steps: Math.min(60, Math.max(20, Math.round(600 / stepMs))), computeUs: stepMs * 1000, touch: !big });
        const blocked = r.blockedMapUsPerPage * r.pagesPerStep;
        points.push({
          pageBytes, mode, stepMs, layers: opts.layers, pagesPerStep: r.pagesPerStep,
          blockedUsPerStep: round(blocked), fractionOfStep: round(blocked / (stepMs * 1000)), mmapUsPerPage: round(r.mmapUsPerPage),
        });
      }
    }
  }
  return points;
}
