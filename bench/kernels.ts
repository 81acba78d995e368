// `npm run bench -- kernels`: per-op timings of vserve's native backend on TinyLlama-1.1B shapes,
// through the Backend interface the model uses (so each number includes the N-API call). For each op:
// milliseconds per call, GB/s moved (against the read bandwidth measured in the same run) and, where
// the op does arithmetic worth counting, GFLOP/s (against an estimated peak, see peak-flops.ts).
// Decode-sized matmuls (n=1) cycle through every layer's matrix of a kind, so they read memory the way
// a decode step does instead of re-reading one cache-resident matrix.
import { ArrayKV } from '../src/backend/array-kv.js';
import type { Backend, Weight } from '../src/backend/backend.js';
import { createBackend, type BackendKind } from '../src/backend/index.js';
import { GGUFFile } from '../src/model/gguf/reader.js';
import { typeName } from '../src/model/gguf/types.js';
import { readModelConfig } from '../src/model/architectures/index.js';
import type { ModelConfig } from '../src/model/model-config.js';
import { BenchArgs } from './args.js';
import { bestBandwidth, measureReadBandwidth } from './bandwidth.js';
import { startContention, waitForQuiet } from './contention.js';
import { machineInfo } from './machine.js';
import { ensureBenchModel, isBenchDType, isShapeName, type ShapeName } from './models.js';
import { nativeIsa } from './native-addon.js';
import { estimatePeakFlops, measurePeakCompute } from './peak-flops.js';
import { Xorshift128 } from './random-weights.js';
import { markdownTable, writeReport } from './report.js';
import { round } from './stats.js';
import { evictCaches, timeOp } from './timing.js';

interface OpResult {
  group: string;
  op: string;
  shape: string;
  n: number;
  ms: number;
  calls: number;
  gbPerS: number;
  fractionOfBandwidth: number;
  gflops?: number;
  fractionOfPeak?: number;
  /** Quantized matmuls: against the measured int8 dot-product peak (the instructions they run on). */
  fractionOfInt8Peak?: number;
}

interface Ctx {
  backend: Backend;
  bandwidthGBps: number;
  peakGflops: number;
  int8PeakGops: number;
  results: OpResult[];
  rng: Xorshift128;
}

function randomFloats(n: number, rng: Xorshift128, scale = 1): Float32Array {
  const out = new Float32Array(n);
  for (let i = 0; i < n; i++) out[i] = ((rng.next() / 0x100000000) - 0.5) * 2 * scale;
  return out;
}

/**
 * Times `run` (which does `repeat` units of work per call) and records per-unit numbers; `fromMemory`
 * evicts the caches before each call, so the operands come from memory as a decode step's weights do.
 */
function record(c: Ctx, group: string, op: string, shape: string, n: number, bytes: number, flops: number | undefined, run: () => void, repeat = 1, fromMemory = false): void {
  const t = timeOp(run, undefined, undefined, fromMemory ? evictCaches : undefined);
  const seconds = t.medianMs / 1000 / repeat;
  const gbPerS = bytes / seconds / 1e9;
  const r: OpResult = { group, op, shape, n, ms: round(seconds * 1000), calls: t.calls, gbPerS: round(gbPerS), fractionOfBandwidth: round(gbPerS / c.bandwidthGBps) };
  if (flops !== undefined) {
    r.gflops = round(flops / seconds / 1e9);
    r.fractionOfPeak = round(flops / seconds / 1e9 / c.peakGflops);
    if (op.startsWith('matmul') && /^q\d/i.test(group) && Number.isFinite(c.int8PeakGops)) r.fractionOfInt8Peak = round(flops / seconds / 1e9 / c.int8PeakGops);
  }
  c.results.push(r);
  process.stderr.write(`${group} ${op} ${shape} n=${n}: ${r.ms} ms, ${r.gbPerS} GB/s${r.gflops !== undefined ? `, ${r.gflops} GFLOP/s` : ''}\n`);
}

function benchMatmuls(c: Ctx, file: GGUFFile, cfg: ModelConfig, group: string, ns: readonly number[]): void {
  const kinds = ['attn_q', 'attn_k', 'ffn_gate', 'ffn_down'];
  const byKind = new Map<string, Weight[]>();
  for (const kind of kinds) {
    byKind.set(kind, Array.from({ length: cfg.nLayers }, (_, l) => c.backend.loadWeight(file, file.tensor(`blk.${l}.${kind}.weight`)!)));
  }
  byKind.set('output', [c.backend.loadWeight(file, file.tensor('output.weight')!)]);
  for (const [kind, weights] of byKind) {
    const w = weights[0]!;
    const info = file.tensor(w.name)!;
    for (const n of ns) {
      const x = randomFloats(n * w.cols, c.rng);
      const out = new Float32Array(n * w.rows);
      const bytes = info.nBytes + (x.length + out.length) * 4;
      const flops = 2 * n * w.rows * w.cols;
      const shape = `${w.rows}x${w.cols} ${typeName(w.type)}`;
      if (n === 1) {
        record(c, group, `matmul ${kind}`, shape, n, bytes, flops, () => { for (const wl of weights) c.backend.matmul(out, x, n, wl); }, weights.length, true);
      } else {
        record(c, group, `matmul ${kind}`, shape, n, bytes, flops, () => c.backend.matmul(out, x, n, w));
      }
    }
  }
  const table = c.backend.loadWeight(file, file.tensor('token_embd.weight')!);
  const rowBytes = file.tensor('token_embd.weight')!.nBytes / table.rows;
  for (const n of [1, 512]) {
    const ids = Int32Array.from({ length: n }, () => c.rng.next() % table.rows);
    const out = new Float32Array(n * table.cols);
    record(c, group, 'embed', `${table.rows}x${table.cols} ${typeName(table.type)}`, n, n * (rowBytes + table.cols * 4), undefined, () => c.backend.embed(out, ids, table));
  }
}

/** Ops whose cost does not depend on the weight type: norms, RoPE, SwiGLU, residual add, KV store, attention. */
function benchF32Ops(c: Ctx, cfg: ModelConfig): void {
  const b = c.backend;
  const group = 'f32';
  const qDim = cfg.nHeads * cfg.headDim;
  const kvDim = cfg.nKVHeads * cfg.headDim;
  for (const n of [1, 512]) {
    const x = randomFloats(n * cfg.dim, c.rng);
    const w = randomFloats(cfg.dim, c.rng, 1);
    record(c, group, 'rmsnorm', `${cfg.dim}`, n, 2 * x.length * 4, undefined, () => b.rmsnorm(x, x, w, n, cfg.dim, cfg.normEps));
    const q = randomFloats(n * qDim, c.rng);
    const positions = Int32Array.from({ length: n }, (_, i) => i);
    const rope = { nHeads: cfg.nHeads, headDim: cfg.headDim, ropeDim: cfg.ropeDim, freqBase: cfg.ropeFreqBase, freqScale: cfg.ropeFreqScale, mode: cfg.ropeMode };
    record(c, group, 'rope q', `${cfg.nHeads}x${cfg.headDim}`, n, 2 * q.length * 4, undefined, () => b.rope(q, positions, rope));
    const gate = randomFloats(n * cfg.ffnDim, c.rng);
    const up = randomFloats(n * cfg.ffnDim, c.rng);
    record(c, group, 'swiglu', `${cfg.ffnDim}`, n, 3 * gate.length * 4, undefined, () => b.swiglu(gate, gate, up, gate.length));
    record(c, group, 'add', `${cfg.dim}`, n, 3 * x.length * 4, undefined, () => b.add(x, x, x.length));
  }

  const maxContext = 2048;
  const kv = new ArrayKV(1, 1, maxContext, cfg.nKVHeads, cfg.headDim);
  // Fill the whole cache once so attention reads real (finite) values.
  {
    const k = randomFloats(maxContext * kvDim, c.rng);
    const v = randomFloats(maxContext * kvDim, c.rng);
    b.kvStore(kv, 0, k, v, new Int32Array(maxContext), Int32Array.from({ length: maxContext }, (_, i) => i));
  }
  const shape = { nHeads: cfg.nHeads, nKVHeads: cfg.nKVHeads, headDim: cfg.headDim, scale: 1 / Math.sqrt(cfg.headDim) };
  const shapeText = `${cfg.nHeads}/${cfg.nKVHeads} heads x${cfg.headDim}`;
  for (const n of [1, 512]) {
    const k = randomFloats(n * kvDim, c.rng);
    const v = randomFloats(n * kvDim, c.rng);
    const positions = Int32Array.from({ length: n }, (_, i) => i);
    record(c, group, 'kvStore', `${kvDim}`, n, 4 * k.length * 4, undefined, () => b.kvStore(kv, 0, k, v, new Int32Array(n), positions));
  }
  // Decode: one query at the end of a context of `ctx` tokens.
  for (const ctx of [128, 512, 2048]) {
    const q = randomFloats(qDim, c.rng);
    const out = new Float32Array(qDim);
    const bytes = 2 * ctx * kvDim * 4;
    const flops = 4 * cfg.nHeads * cfg.headDim * ctx;
    record(c, group, `attention decode ctx=${ctx}`, shapeText, 1, bytes, flops,
      () => b.attention(out, q, kv, 0, Int32Array.of(0), Int32Array.of(ctx - 1), shape));
  }
  // Prefill: n queries from position 0, causal.
  for (const n of [128, 512]) {
    const q = randomFloats(n * qDim, c.rng);
    const out = new Float32Array(n * qDim);
    const bytes = (2 * n * kvDim + 2 * n * qDim) * 4;
    const flops = 4 * cfg.nHeads * cfg.headDim * (n * (n + 1)) / 2;
    record(c, group, 'attention prefill', shapeText, n, bytes, flops,
      () => b.attention(out, q, kv, 0, new Int32Array(n), Int32Array.from({ length: n }, (_, i) => i), shape));
  }
}

async function runOps(c: Ctx, shape: ShapeName, dtypes: readonly string[], ns: readonly number[]): Promise<void> {
  for (const d of dtypes) {
    if (!isBenchDType(d)) throw new Error(`unknown dtype "${d}" in --dtypes`);
    const file = GGUFFile.open(await ensureBenchModel(shape, d));
    try {
      benchMatmuls(c, file, readModelConfig(file), d, ns);
    } finally {
      file.close();
    }
  }
  // The f32 ops only need the shape's hyperparameters, from any of its files.
  const file = GGUFFile.open(await ensureBenchModel(shape, dtypes.find(isBenchDType) ?? 'q4_0'));
  const cfg = readModelConfig(file);
  file.close();
  benchF32Ops(c, cfg);
}

export async function kernelsCommand(argv: readonly string[]): Promise<void> {
  const args = new BenchArgs(argv);
  const machine = machineInfo();
  const threads = args.int('threads', machine.physicalCores);
  const shape = args.string('shape', 'tinyllama-1.1b');
  if (!isShapeName(shape)) throw new Error(`unknown --shape "${shape}"`);
  const dtypes = args.list('dtypes', ['q8_0', 'q4_0']);
  const ns = args.list('ns', ['1', '128', '512']).map(Number);
  const kind = args.string('backend', 'native') as BackendKind;
  let backend: Backend | undefined;
  let unavailable = '';
  try {
    backend = createBackend(kind, { threads });
  } catch (e) {
    unavailable = (e as Error).message; // e.g. the addon is not built
  }
  const isa = nativeIsa();
  const quietWaitMs = args.int('quiet-wait', 10) * 1000;
  const measureBandwidth = async () => {
    await waitForQuiet(quietWaitMs);
    return measureReadBandwidth([threads]);
  };
  let bw = await measureBandwidth();
  const estimate = estimatePeakFlops(threads, isa);
  const measured = kind === 'native' ? measurePeakCompute(threads) : undefined;
  const peak = measured
    ? { gflops: measured.f32Gflops, int8Gops: measured.int8Gops, how: `measured: register-only ${measured.isa} FMA loops on ${measured.threads} threads (int8 dot products: ${round(measured.int8Gops)} GOP/s)` }
    : { gflops: estimate.gflops, int8Gops: NaN, how: estimate.how };
  const results: OpResult[] = [];
  const contention = startContention();
  if (backend) {
    try {
      await runOps({ backend, bandwidthGBps: bw.best.gbPerS, peakGflops: peak.gflops, int8PeakGops: peak.int8Gops, results, rng: new Xorshift128(42) }, shape, dtypes, ns);
    } finally {
      backend.close();
    }
  }
  const otherLoad = contention();
  const available = backend !== undefined;

  // Measured again after the ops, keeping the higher: other processes only ever lower it. The fractions
  // are computed against the final value.
  bw = bestBandwidth(bw, await measureBandwidth());
  for (const r of results) r.fractionOfBandwidth = round(r.gbPerS / bw.best.gbPerS);
  const report = {
    benchmark: 'kernels',
    date: new Date().toISOString(),
    machine,
    backend: kind,
    available,
    threads,
    isa: isa ?? null,
    bandwidth: { source: bw.source, gbPerS: round(bw.best.gbPerS), threads },
    peakFlopsEstimate: { ...estimate, gflops: round(estimate.gflops) },
    peakMeasured: measured ? { ...measured, f32Gflops: round(measured.f32Gflops), int8Gops: round(measured.int8Gops) } : null,
    /** Share of the CPUs other processes used while the ops ran (more than a few percent: numbers are low). */
    otherLoad: round(otherLoad, 2),
    results,
  };
  const pct = (x: number | undefined) => (x === undefined ? '' : `${Math.round(x * 100)}%`);
  const md = [
    `# vserve kernels (${kind} backend, ${threads} threads${isa ? `, ${isa}` : ''}), ${shape} shapes`,
    '',
    `Read bandwidth ${round(bw.best.gbPerS)} GB/s (${bw.source}); f32 peak ${round(peak.gflops)} GFLOP/s (${peak.how}). ` +
      `Other processes used ${Math.round(report.otherLoad * 100)}% of the CPUs meanwhile.`,
    'Matmul bytes = weight bytes + f32 activations in and out; FLOPs = 2·n·rows·cols. n=1 matmuls run over all layers ' +
      'after evicting the caches, so their weights come from memory as in a decode step; the other ops and n≥128 matmuls work on cache-resident data, so their GB/s can exceed ' +
      "the memory's. Quantized matmuls run on int8 dot products, which can pass the f32 FMA peak (% f32 peak > 100%); " +
      '"% int8 peak" holds them to the measured int8 dot-product peak instead.',
    '',
    available
      ? markdownTable(['weights', 'op', 'shape', 'n', 'ms', 'GB/s', '% BW', 'GFLOP/s', '% f32 peak', '% int8 peak'],
        results.map((r) => [r.group, r.op, r.shape, r.n, r.ms, r.gbPerS, pct(r.fractionOfBandwidth), r.gflops ?? '', pct(r.fractionOfPeak), pct(r.fractionOfInt8Peak)]))
      : `The ${kind} backend is not available: ${unavailable}`,
    '',
  ].join('\n');
  writeReport('kernels', report, md);
}
