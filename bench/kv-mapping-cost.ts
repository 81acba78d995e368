// Prints what mapping and unmapping one KV page costs the step loop, per page size, sync vs async.
// Usage: node dist/bench/kv-mapping-cost.js   (a script, not a test: it asserts nothing)
import { measureMappingCost } from '../src/kv/index.js';

const rows = [];
for (const pageSize of [4 << 10, 64 << 10, 2 << 20]) {
  for (const mode of ['sync', 'async'] as const) {
    const r = measureMappingCost({ pageSize, mode, steps: pageSize >= 2 << 20 ? 100 : 400 });
    rows.push({
      page: `${pageSize >> 10} KiB`,
      mode,
      'blocked map µs/page (median)': r.blockedMapUsPerPage.toFixed(2),
      'blocked map µs/page (mean)': r.blockedMapUsPerPageMean.toFixed(2),
      'mmap µs/page': r.mmapUsPerPage.toFixed(2),
      'blocked unmap µs/page': r.blockedUnmapUsPerPage.toFixed(2),
      'unmap syscall µs/page': r.munmapUsPerPage.toFixed(2),
    });
  }
}
console.table(rows);
