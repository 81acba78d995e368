// `npm run bench -- kv`: the KV-cache comparisons of DESIGN §3 - (a) attention throughput of the
// contiguous vs the paged kernel, (b) the virtual manager's mapping cost per step, sync vs async,
// (c) capacity of one KV budget under static, paged and virtual management, and per KV format - and of
// the KV formats: (d) decode attention per format, (e) end-to-end long-context decode per format against
// llama.cpp with the same cache types. Reports, never asserts.
import os from 'node:os';
import { join } from 'node:path';
import { NativeBackend } from '../src/backend/native/native-backend.js';
import type { KVType } from '../src/kv/format.js';
import { BenchArgs } from './args.js';
import { benchAttention, DEFAULT_ROUNDS, TINYLLAMA_ATTENTION, type AttentionPoint, type PagedPool } from './kv-attention.js';
import { benchCapacity, benchFormatCapacity, formatCapacityMarkdown, sampleMix, traceLengths, type CapacityPoint, type LengthMix } from './kv-capacity.js';
import { benchDecodeE2E, e2eMarkdown, type E2EOptions } from './kv-e2e.js';
import { DEFAULT_FORMAT_VARIANTS, parseKVTypes } from './kv-format-variants.js';
import { benchFormatAttention, formatAttentionMarkdown } from './kv-formats-attention.js';
import { maxMapCount } from '../src/kv/index.js';
import { benchMapping } from './kv-mapping.js';
import { machineInfo } from './machine.js';
import { ensureBenchModel } from './models.js';
import { repoRoot } from './paths.js';
import { markdownTable, writePartialReport, writeReport } from './report.js';
import { median, round } from './stats.js';

const TRACE = join(repoRoot, '..', 'shared', 'traces', 'sharegpt_8k_filtered_stats_llama2_tokenizer.csv');
const MAX_CONTEXT = 4096;
/** TinyLlama-1.1B's KV: 22 layers of 4 KV heads x 64 (the managers are compared storing f32). */
const TINYLLAMA_KV = { layers: 22, kvHeads: 4, headDim: 64, maxContext: MAX_CONTEXT };
const F32: KVType = { k: 'f32', v: 'f32' };

/** What every section gets besides the options: the thread count, --quick, and a way to save a partial report. */
interface SectionContext {
  threads: number;
  /** Smoke-test sizes for every default (explicit options still win). */
  quick: boolean;
  /** Writes kv-partial.{json,md} with this section's data and lines so far. */
  partial: (data: unknown, md: string[]) => void;
}

type Section = (args: BenchArgs, ctx: SectionContext) => { data: unknown; md: string[] } | Promise<{ data: unknown; md: string[] }>;

const ints = (xs: string[]) => xs.map(Number);

function attentionTable(points: AttentionPoint[]): string {
  const variants = points[0]?.paged ?? [];
  return markdownTable(
    ['phase', 'batch', 'context / chunk', 'contiguous ms', ...variants.map((v) => `ratio @${v.blockSize} ${v.pool}`)],
    points.map((p) => [p.phase, p.batch, p.context, p.contiguousMs, ...p.paged.map((x) => `${x.ratio}x`)]),
  );
}

/**
 * One line per (block size, pool): the decode and prefill ratios' median and range [targets: >= 1.2
 * decode at 16, >= 1 everywhere], and the points where one layout won nearly every round. A point's
 * ratio is the median of its rounds' ratios; for layouts that are really equal, each round is a coin
 * flip, so losing all but at most one of n rounds (probability (n + 1) / 2^n, 0.5% at 11) is a real loss.
 */
function ratioSummary(points: AttentionPoint[], blockSize: number, pool: PagedPool): string {
  const of = (phase: AttentionPoint['phase']) =>
    points.filter((p) => p.phase === phase).map((p) => ({ p, v: p.paged.find((x) => x.blockSize === blockSize && x.pool === pool)! }));
  const describe = (phase: AttentionPoint['phase']) => {
    const xs = of(phase).map(({ v }) => v.ratio);
    if (xs.length === 0) return 'none';
    const clear = (won: (r: number) => boolean) =>
      of(phase).filter(({ v }) => v.ratios.filter(won).length >= v.ratios.length - 1).map(({ p }) => `${p.batch}x${p.context}`);
    const slower = clear((r) => r < 1);
    return `median ${round(median(xs))}x (${round(Math.min(...xs))}-${round(Math.max(...xs))}x over ${xs.length} points; ` +
      `contiguous faster in all rounds but one at ${clear((r) => r > 1).length}, slower at ${slower.length === 0 ? 'none' : slower.join(', ')})`;
  };
  return `- block ${blockSize}, ${pool} pool: decode ${describe('decode')}; prefill ${describe('prefill')}`;
}

function capacityTable(points: CapacityPoint[]): string {
  const mean = (mix: string, manager: CapacityPoint['manager']) => points.find((p) => p.mix === mix && p.manager === manager)!.meanSequences;
  const kib = (b: number) => (b >= 1 << 20 ? `${b / 2 ** 20} MiB` : `${b / 1024} KiB`);
  return markdownTable(
    ['length mix', 'manager', 'page', 'sequences (mean)', 'min-max', 'x paged', 'x static', 'unused MiB', 'unused pages / (slot, layer, K/V)'],
    points.map((p) => [p.mix, p.manager, `${kib(p.pageBytes)}${p.pageChoice ? ` (${p.pageChoice})` : ''}`, round(p.meanSequences, 4),
      `${Math.min(...p.sequences)}-${Math.max(...p.sequences)}`, (p.meanSequences / mean(p.mix, 'paged')).toFixed(3),
      round(p.meanSequences / mean(p.mix, 'static')), round(p.wasteBytes / 2 ** 20), p.wastePagesPerRange]),
  );
}

/** Per mix, virtual's capacity at each page size against the targets (>= 0.98x paged, >= 4x static). */
function capacitySummary(points: CapacityPoint[]): string[] {
  const mixes = [...new Set(points.map((p) => p.mix))];
  return mixes.map((mix) => {
    const of = (m: CapacityPoint['manager']) => points.filter((p) => p.mix === mix && p.manager === m);
    const paged = of('paged')[0]!.meanSequences, stat = of('static')[0]!.meanSequences;
    const parts = of('virtual').map((v) => `${v.pageBytes / 1024} KiB${v.pageChoice ? ` (${v.pageChoice})` : ''}: ${(v.meanSequences / paged).toFixed(3)}x paged, ${round(v.meanSequences / stat)}x static`);
    return `- ${mix}: ${parts.join('; ')}`;
  });
}

/** --batches, --contexts and --rounds, shared by both attention parts. */
function attentionGrid(args: BenchArgs, quick: boolean): { batches: number[]; contexts: number[]; rounds: number } {
  return {
    batches: ints(args.list('batches', quick ? ['1', '4'] : ['1', '8', '32'])),
    contexts: ints(args.list('contexts', quick ? ['256', '1024'] : ['1024', '4096', '8192'])),
    rounds: args.int('rounds', quick ? 3 : DEFAULT_ROUNDS),
  };
}

const formatVariants = (args: BenchArgs) => parseKVTypes(args.list('formats', DEFAULT_FORMAT_VARIANTS));

function attentionSection(args: BenchArgs, { threads, quick }: SectionContext): { data: unknown; md: string[] } {
  const blockSizes = ints(args.list('block-sizes', quick ? ['16'] : ['16', '64', '256']));
  const pools = args.list('pools', ['fresh', 'fragmented']).map((p) => {
    if (p !== 'fresh' && p !== 'fragmented') throw new Error(`--pools: "${p}" is not fresh or fragmented`);
    return p as PagedPool;
  });
  const { batches, contexts, rounds } = attentionGrid(args, quick);
  const backend = new NativeBackend({ threads });
  let points: AttentionPoint[];
  try {
    points = benchAttention(backend, {
      batches,
      contexts,
      chunks: ints(args.list('chunks', quick ? ['128'] : ['128', '512', '2048'])),
      blockSizes,
      pools,
      rounds,
    });
  } finally {
    backend.close();
  }
  return {
    data: { shape: TINYLLAMA_ATTENTION, isa: backend.isa, blockSizes, pools, rounds, points },
    md: [
      `## Attention (native backend, ${backend.isa}, ${threads} thread${threads === 1 ? '' : 's'}; TinyLlama: 32 heads, 4 KV heads of 64, f32 KV, one layer)`,
      '',
      'Decode: `batch` sequences of `context` tokens, one query each, with the CPU caches evicted before every call (in a model step the weights and the other layers\' KV pass through them between two calls on one layer). Prefill: one chunk of `chunk` tokens from position 0 (causal), on warm caches (its K/V was just written).',
      "Both kernels share their loop, SIMD and threading. The contiguous cache is the virtual manager's (memfd pool, 64 KiB pages). The paged cache's blocks come from a fresh pool (handed out in turn to the growing slots, so interleaved across them) or a fragmented one (handed out in a random order, as from a long-running server's free list). " +
        `ratio = contiguous throughput / paged throughput (> 1: contiguous faster), the median over ${rounds} rounds of the ratio within each round (layouts run back to back, in a rotating order; ms columns are medians over rounds; load average ${os.loadavg()[0]!.toFixed(1)} on ${os.availableParallelism()} logical cores at the end).`,
      '',
      attentionTable(points),
      '',
      ...blockSizes.flatMap((b) => pools.map((pool) => ratioSummary(points, b, pool))),
    ],
  };
}

function mappingSection(args: BenchArgs, { quick }: SectionContext): { data: unknown; md: string[] } {
  const points = benchMapping({ pageSizes: [4 << 10, 64 << 10, 2 << 20], stepMs: ints(args.list('step-ms', quick ? ['3'] : ['30', '3'])), layers: TINYLLAMA_KV.layers });
  return {
    data: points,
    md: [
      `## Mapping cost per step (virtual manager, ${TINYLLAMA_KV.layers} layers: every step maps one page into each of the ${TINYLLAMA_KV.layers * 2} (layer, K/V) ranges)`,
      '',
      markdownTable(['page', 'mode', 'step ms', 'pages/step', 'blocked µs/step', '% of step', 'mmap µs/page'],
        points.map((m) => [`${m.pageBytes >> 10} KiB`, m.mode, m.stepMs, m.pagesPerStep, m.blockedUsPerStep, `${round(m.fractionOfStep * 100)}%`, m.mmapUsPerPage])),
    ],
  };
}

function capacitySection(args: BenchArgs, { quick }: SectionContext): { data: unknown; md: string[] } {
  const budgetBytes = args.int('budget-mib', quick ? 1024 : 4096) * 2 ** 20;
  const lengths = traceLengths(args.string('trace', TRACE), MAX_CONTEXT);
  const samples = args.int('samples', quick ? 300 : 2000);
  const seeds = args.int('seeds', quick ? 1 : 10);
  const pageSizes = args.list('page-sizes', quick ? ['default'] : ['16', '64', 'default']).map((p) => {
    if (p === 'default') return 0;
    if (!/^\d+$/.test(p)) throw new Error(`--page-sizes: "${p}" is not a page size in KiB or "default"`);
    return Number(p) * 1024;
  });
  const orders = (name: string, pool: number[], base: number) =>
    Array.from({ length: seeds }, (_, i) => sampleMix(name, pool, samples, base + i));
  const mixes = [
    orders(`ShareGPT-8k, clipped to ${MAX_CONTEXT}`, lengths, 1),
    orders('ShareGPT-8k rows of <= 2000 tokens', lengths.filter((l) => l <= 2000), 1001),
  ];
  const points = benchCapacity({ ...TINYLLAMA_KV, type: F32 }, budgetBytes, mixes, { blockSize: 16, pageSizes });
  const types = formatVariants(args);
  const formatPoints = benchFormatCapacity(TINYLLAMA_KV, budgetBytes, mixes, { types: types.map((t) => t.type), blockSize: 16, pageSizes });
  const meanOf = (m: LengthMix[]) => round(m.reduce((a, x) => a + x.mean, 0) / m.length);
  return {
    data: { kvShape: { ...TINYLLAMA_KV, type: F32 }, budgetBytes, maxMapCount: maxMapCount(), seeds, mixes: mixes.map((m) => ({ name: m[0]!.name, mean: meanOf(m), samples })), points, formatPoints },
    md: [
      `## Capacity of a ${budgetBytes / 2 ** 30} GiB KV budget (TinyLlama KV: 22 layers x 4 x 64, f32, max context ${MAX_CONTEXT})`,
      '',
      `Sequences admitted in sampled order until the manager refuses (static: budget / maxContext slots), over ${seeds} sampled orders per mix. ` +
        `Mixes: ${mixes.map((m) => `${m[0]!.name}: mean ${meanOf(m)} tokens`).join('; ')}. ` +
        `Paged: 16-token blocks (16 KiB per layer and K/V). Virtual: the page sizes listed; "default" is what the manager picks for this budget under this machine's vm.max_map_count (${maxMapCount()}), keeping the pool's worst-case mappings under it. ` +
        'A TinyLlama token is only 1 KiB per layer and K/V (4 KV heads of 64), so a 64 KiB page holds 64 tokens: models with more KV heads fill a page with fewer tokens and lose less.',
      '',
      capacityTable(points),
      '',
      ...capacitySummary(points),
      '',
      `### Capacity per KV type (the same budget, mixes and orders; paged block 16 tokens, virtual at the page sizes above)`,
      '',
      'x f32 = mean sequences admitted / those of the same manager and page setting storing f32 (a "default" page is chosen per type, as the engine would). ' +
        'Rows per (layer, K/V): f32 1024 B, f16 512, q8_0 272, q4_0 144 per token; a K/V pair of types stores both at the larger row. Targets against f32: f16 >= 1.98x, q8_0 >= 3.6x, q4_0 >= 6.0x.',
      '',
      ...formatCapacityMarkdown(formatPoints),
    ],
  };
}

function formatsSection(args: BenchArgs, { threads, quick }: SectionContext): { data: unknown; md: string[] } {
  const { batches, contexts, rounds } = attentionGrid(args, quick);
  const variants = formatVariants(args);
  const backend = new NativeBackend({ threads });
  let points;
  try {
    points = benchFormatAttention(backend, TINYLLAMA_ATTENTION, { batches, contexts, variants, rounds });
  } finally {
    backend.close();
  }
  const header = `## Decode attention per KV format (native backend, ${backend.isa}, ${threads} thread${threads === 1 ? '' : 's'}; TinyLlama: 32 heads, 4 KV heads of 64, one layer; ` +
    `virtual manager, 64 KiB pages; load average ${os.loadavg()[0]!.toFixed(1)} on ${os.availableParallelism()} logical cores at the end)`;
  return {
    data: { shape: TINYLLAMA_ATTENTION, isa: backend.isa, rounds, formats: variants, points },
    md: formatAttentionMarkdown(points, header, rounds),
  };
}

async function e2eSection(args: BenchArgs, { threads, quick, partial }: SectionContext): Promise<{ data: unknown; md: string[] }> {
  const prompt = args.string('e2e-prompt', quick ? '256-512' : '2048-4096');
  const m = /^(\d+)-(\d+)$/.exec(prompt);
  if (!m || Number(m[1]) < 2 || Number(m[1]) > Number(m[2])) throw new Error(`--e2e-prompt must be a token range like 2048-4096, got "${prompt}"`);
  const peerFa = args.string('peer-flash-attention', 'on');
  if (!['on', 'off', 'auto'].includes(peerFa)) throw new Error(`--peer-flash-attention must be on, off or auto, got "${peerFa}"`);
  const opts: E2EOptions = {
    modelPath: args.string('model', '') || (await ensureBenchModel('tinyllama-1.1b-8k', 'q8_0')),
    variants: formatVariants(args),
    sequences: args.int('e2e-seqs', quick ? 4 : 16),
    promptTokens: [Number(m[1]), Number(m[2])],
    decodeTokens: args.int('e2e-decode', quick ? 8 : 64),
    threads,
    reps: Math.max(1, args.int('e2e-reps', 1)),
    peer: !args.flag('no-peer'),
    peerBatchSize: args.int('peer-batch', 512),
    peerFlashAttention: peerFa === 'auto' ? 'auto' : peerFa === 'on',
    peerDispatchWaitMs: args.int('peer-dispatch-wait-ms', 5),
    quietWaitMs: args.int('quiet-wait', quick ? 0 : 10) * 1000,
    seed: args.int('seed', 7),
  };
  const result = await benchDecodeE2E(opts, (r) => partial({ options: opts, ...r }, e2eMarkdown(r, opts)));
  return { data: { options: opts, ...result }, md: e2eMarkdown(result, opts) };
}

const SECTIONS: Record<string, Section> = { attention: attentionSection, mapping: mappingSection, capacity: capacitySection, formats: formatsSection, e2e: e2eSection };

export async function kvCommand(argv: readonly string[]): Promise<void> {
  const args = new BenchArgs(argv);
  const machine = machineInfo();
  const threads = args.int('threads', machine.physicalCores);
  const quick = args.flag('quick');
  const report: Record<string, unknown> = { benchmark: 'kv', date: new Date().toISOString(), machine, threads, quick };
  const md = ['# KV cache: contiguous vs paged attention, mapping cost, capacity, KV formats', ''];
  const parts = args.list('parts', args.list('part', Object.keys(SECTIONS)));
  for (const part of parts) if (!Object.hasOwn(SECTIONS, part)) throw new Error(`unknown part "${part}" in --parts (${Object.keys(SECTIONS).join(', ')})`);
  for (const part of parts) {
    const partial = (data: unknown, lines: string[]) => writePartialReport('kv', { ...report, [part]: data }, [...md, ...lines].join('\n'));
    const { data, md: lines } = await SECTIONS[part]!(args, { threads, quick, partial });
    report[part] = data;
    md.push(...lines, '');
    writePartialReport('kv', report, md.join('\n'));
  }
  writeReport('kv', report, md.join('\n'));
}
