// Decode attention per KV format (`npm run bench -- kv --parts formats`): the same batch of one-query
// sequences over caches that differ only in the formats K and V are stored in. Each cache is a
// VirtualKVManager's (memfd pool, 64 KiB pages, as the engine runs it) whose rows were written by the
// backend's kvStore, the encoder the engine uses. Formats run back to back within each round, in a
// rotating order; speedups are taken within a round (see attention-rounds.ts).
import type { AttentionShape, Backend, ContiguousKV } from '../src/backend/backend.js';
import { rowBytesOf, type KVType } from '../src/kv/format.js';
import { resolveShape, tokenBytes } from '../src/kv/shape.js';
import { VirtualKVManager } from '../src/kv/virtual-kv.js';
import { fillFloats, timeInRounds } from './attention-rounds.js';
import { markdownTable } from './report.js';
import { median, round } from './stats.js';

const PAGE_BYTES = 64 << 10;

/** A speedup over a reference format: its time / this one's, per round, and their median. */
export interface Speedup {
  ratio: number;
  ratios: number[];
}

export interface FormatTiming {
  label: string;
  type: KVType;
  /** Median over rounds of the round's median call time. */
  ms: number;
  /** K and V bytes the call reads (batch x context rows of each), and that over ms. */
  kvBytes: number;
  gbPerS: number;
  vsF32?: Speedup;
  vsF16?: Speedup;
}

export interface FormatAttentionPoint {
  batch: number;
  context: number;
  formats: FormatTiming[];
}

export interface FormatAttentionOptions {
  batches: number[];
  contexts: number[];
  variants: { label: string; type: KVType }[];
  rounds: number;
}

/** `slots` sequences of `tokens` positions in `type`, every row written by backend.kvStore. */
function formatCache(backend: Backend, slots: number, tokens: number, s: AttentionShape, type: KVType): { view: ContiguousKV; manager: VirtualKVManager } {
  const kvShape = { layers: 1, kvHeads: s.nKVHeads, headDim: s.headDim, maxSlots: slots, maxContext: tokens, type };
  // Rows never straddle pages, so a page can hold a little less than its bytes' worth: two pages spare.
  const perRange = (Math.ceil((tokens * tokenBytes(resolveShape(kvShape))) / PAGE_BYTES) + 2) * PAGE_BYTES;
  const manager = new VirtualKVManager({ ...kvShape, pageSize: PAGE_BYTES, budgetBytes: slots * perRange * 2 });
  try {
    for (let i = 0; i < slots; i++) manager.allocSlot();
    if (!manager.step(new Int32Array(slots).fill(tokens)).ok) throw new Error('format bench cache: pool too small');
    const view = manager.view();
    const k = new Float32Array(tokens * s.nKVHeads * s.headDim), v = new Float32Array(k.length);
    fillFloats(k, 1);
    fillFloats(v, 2);
    const row = s.nKVHeads * s.headDim;
    // A cache with a residual window (KIVI) takes a sequence's rows a chunk at a time.
    const chunk = view.residual?.chunkTokens ?? tokens;
    for (let slot = 0; slot < slots; slot++) {
      for (let at = 0; at < tokens; at += chunk) {
        const n = Math.min(chunk, tokens - at);
        const positions = Int32Array.from({ length: n }, (_, i) => at + i);
        backend.kvStore(view, 0, k.subarray(at * row, (at + n) * row), v.subarray(at * row, (at + n) * row), new Int32Array(n).fill(slot), positions);
      }
    }
    return { view, manager };
  } catch (e) {
    manager.close();
    throw e;
  }
}

function speedup(rounds: number[][], reference: number, i: number): Speedup {
  const ratios = rounds.map((r) => r[reference]! / r[i]!);
  return { ratio: round(median(ratios)), ratios: ratios.map((x) => round(x)) };
}

function point(backend: Backend, batch: number, context: number, opts: FormatAttentionOptions, s: AttentionShape): FormatAttentionPoint {
  const caches: ReturnType<typeof formatCache>[] = [];
  let rounds: number[][];
  try {
    for (const v of opts.variants) caches.push(formatCache(backend, batch, context, s, v.type));
    const slots = Int32Array.from({ length: batch }, (_, i) => i);
    const positions = new Int32Array(batch).fill(context - 1);
    rounds = timeInRounds(backend, caches.map((c) => c.view), slots, positions, s, 3, true, opts.rounds);
  } finally {
    for (const c of caches) c.manager.close();
  }
  const f32 = opts.variants.findIndex((v) => v.label === 'f32');
  const f16 = opts.variants.findIndex((v) => v.label === 'f16');
  const values = s.nKVHeads * s.headDim;
  return {
    batch, context,
    formats: opts.variants.map((v, i) => {
      const ms = median(rounds.map((r) => r[i]!));
      const kvBytes = batch * context * (rowBytesOf(caches[i]!.view.keyFormat, values) + rowBytesOf(caches[i]!.view.valueFormat, values));
      return {
        label: v.label, type: v.type, ms: round(ms), kvBytes, gbPerS: round(kvBytes / ms / 1e6),
        ...(f32 >= 0 && i !== f32 ? { vsF32: speedup(rounds, f32, i) } : {}),
        ...(f16 >= 0 && i !== f16 ? { vsF16: speedup(rounds, f16, i) } : {}),
      };
    }),
  };
}

/** One point per (batch, context): every variant's decode attention, with the KV read from memory. */
export function benchFormatAttention(backend: Backend, s: AttentionShape, opts: FormatAttentionOptions): FormatAttentionPoint[] {
  const points: FormatAttentionPoint[] = [];
  for (const batch of opts.batches) {
    for (const context of opts.contexts) {
      process.stderr.write(`kv formats: decode attention, batch ${batch}, context ${context}\n`);
      points.push(point(backend, batch, context, opts, s));
    }
  }
  return points;
}

/** Speedup targets at long context (contexts of at least `minContext`). */
const FORMAT_ATTENTION_TARGETS = [
  { label: 'q8_0', over: 'f16', at: 1.5 },
  { label: 'f16', over: 'f32', at: 1.6 },
] as const;
const LONG_CONTEXT = 4096;

/** Per (format, reference) speedup over the points at long context: median, range, and the verdict. */
function speedupLine(points: readonly FormatAttentionPoint[], label: string, over: 'f16' | 'f32', target?: number): string | undefined {
  const long = points.filter((p) => p.context >= LONG_CONTEXT);
  const xs = long.flatMap((p) => {
    const f = p.formats.find((x) => x.label === label);
    const s = over === 'f16' ? f?.vsF16 : f?.vsF32;
    return s ? [{ p, ratio: s.ratio }] : [];
  });
  if (xs.length === 0) return undefined;
  const ratios = xs.map((x) => x.ratio);
  const below = target === undefined ? [] : xs.filter((x) => x.ratio < target).map((x) => `${x.p.batch}x${x.p.context}`);
  const verdict = target === undefined ? '' : `; target >= ${target}: ${median(ratios) >= target ? '**met**' : '**not met**'} on the median, ` +
    (below.length === 0 ? 'at every point' : `below it at ${below.join(', ')}`);
  return `- ${label} vs ${over} at context >= ${LONG_CONTEXT}: median **${round(median(ratios))}x** (${round(Math.min(...ratios))}–${round(Math.max(...ratios))}x over ${xs.length} points)${verdict}`;
}

export function formatAttentionMarkdown(points: readonly FormatAttentionPoint[], header: string, rounds: number): string[] {
  const labels = points[0]?.formats.map((f) => f.label) ?? [];
  const has = (l: string) => labels.includes(l);
  const ratioColumns = [
    ...(has('f32') ? labels.filter((l) => l !== 'f32').map((l) => ({ l, over: 'f32' as const })) : []),
    ...(has('f16') ? labels.filter((l) => l !== 'f16' && l !== 'f32').map((l) => ({ l, over: 'f16' as const })) : []),
  ];
  const lines = [
    header,
    '',
    `Decode: \`batch\` sequences of \`context\` tokens, one query each, caches evicted before every call. ms = median over ${rounds} rounds; GB/s = K and V bytes read / ms; ` +
      'speedup "a vs b" = b\'s time / a\'s, the median of the per-round ratios (formats run back to back in a rotating order within a round).',
    '',
    markdownTable(['batch', 'context', ...labels.map((l) => `${l} ms (GB/s)`)],
      points.map((p) => [p.batch, p.context, ...p.formats.map((f) => `${f.ms} (${f.gbPerS})`)])),
    '',
  ];
  if (ratioColumns.length > 0) {
    lines.push(markdownTable(['batch', 'context', ...ratioColumns.map((c) => `${c.l} vs ${c.over}`)],
      points.map((p) => [p.batch, p.context, ...ratioColumns.map((c) => {
        const f = p.formats.find((x) => x.label === c.l)!;
        return `${(c.over === 'f16' ? f.vsF16 : f.vsF32)!.ratio}x`;
      })])), '');
  }
  if (!points.some((p) => p.context >= LONG_CONTEXT)) lines.push(`- targets (at context >= ${LONG_CONTEXT}): no point measured there`);
  for (const t of FORMAT_ATTENTION_TARGETS) {
    const line = speedupLine(points, t.label, t.over, t.at);
    if (line) lines.push(line);
  }
  for (const c of ratioColumns.filter((c) => !FORMAT_ATTENTION_TARGETS.some((t) => t.label === c.l && t.over === c.over))) {
    const line = speedupLine(points, c.l, c.over);
    if (line) lines.push(line);
  }
  return lines;
}
