// `npm run bench -- single`: one sequence, prefill tok/s (128- and 512-token prompts in one batch) and
// decode tok/s (greedy, after the 128-token prompt) for vserve and llama.cpp (node-llama-cpp) on the
// same generated model files and the same token ids, engines alternating within each repetition, the
// median reported; next to the machine's read bandwidth measured in the same run and the decode
// speed that bandwidth allows; and what vserve's sampler costs on the model's own decode logits,
// against its decode step.
import type { LlamaModel as PeerModel } from 'node-llama-cpp';
import type { BackendKind } from '../src/backend/index.js';
import { GGUFFile } from '../src/model/gguf/reader.js';
import { createTokenizer } from '../src/model/tokenizer/create-tokenizer.js';
import { TokenType } from '../src/model/tokenizer/vocabulary.js';
import { BenchArgs } from './args.js';
import { startContention, waitForQuiet } from './contention.js';
import { bestBandwidth, measureReadBandwidth, type BandwidthMeasurement } from './bandwidth.js';
import { bytesPerDecodedToken, decodeTraffic, prefillOpsPerToken, type DecodeTraffic } from './decode-traffic.js';
import { machineInfo } from './machine.js';
import { ensureBenchModel, isBenchDType, isShapeName } from './models.js';
import { Xorshift128 } from './random-weights.js';
import { measurePeakCompute, type MeasuredPeak } from './peak-flops.js';
import { markdownTable, writeReport } from './report.js';
import type { SingleSequenceEngine } from './single/engine.js';
import { LlamaCppEngine, loadLlamaCppModel, NODE_LLAMA_CPP_VERSION } from './single/llama-cpp.js';
import { nativeReadBandwidth } from './native-addon.js';
import { measureSamplerCost, SAMPLER_TARGET_FRACTION, type SamplerMeasurement } from './single/sampler-cost.js';
import { VserveEngine } from './single/vserve.js';
import { median, round } from './stats.js';

/** llama.cpp's default KV type is f16; the limit counts KV reads at that size (tiny next to weights here). */
const KV_ELEM_BYTES = 2;

interface Options {
  models: { name: string; path: string }[];
  reps: number;
  decode: number;
  prompts: number[];
  peerThreads: number[];
  vserveThreads: number;
  vserveBackend: BackendKind;
  peer: boolean;
  /** Longest wait for other processes to go quiet before each engine's runs. */
  quietWaitMs: number;
  /** Context both engines are given: the longest prompt plus the decoded tokens. */
  contextSize: number;
}

interface EngineResult {
  label: string;
  details: Record<string, string | number>;
  /** Per prompt length: tok/s of each repetition. */
  prefill: Record<number, number[]>;
  decode: number[];
  /**
   * Read bandwidth (GB/s) probed right before and right after each repetition's decode run, averaged:
   * this host's bandwidth moves between levels from one minute to the next (other tenants), so the
   * limit that bounds a run is the one measured around it.
   */
  decodeBandwidth: number[];
  /** |before - after| / max of those two probes: a large spread means the level changed mid-run. */
  decodeBandwidthSpread: number[];
  /** Fraction of the machine other processes used during each repetition's runs. */
  otherLoad: number[];
  error?: string;
}

interface ModelResult {
  name: string;
  path: string;
  traffic: DecodeTraffic;
  decodePositions: number;
  bytesPerDecodedToken: number;
  engines: EngineResult[];
  unavailable: string[];
  /** vserve's sampler on the model's decode logits, when vserve decoded. */
  sampler?: SamplerMeasurement;
}

async function options(argv: readonly string[]): Promise<Options> {
  const args = new BenchArgs(argv);
  const info = machineInfo();
  const shape = args.string('shape', 'tinyllama-1.1b');
  if (!isShapeName(shape)) throw new Error(`unknown --shape "${shape}"`);
  const explicit = args.string('model', '');
  const models = explicit
    ? [{ name: explicit.replace(/^.*\//, ''), path: explicit }]
    : await Promise.all(args.list('dtypes', ['q8_0', 'q4_0']).map(async (d) => {
      if (!isBenchDType(d)) throw new Error(`unknown dtype "${d}" in --dtypes`);
      return { name: `${shape} ${d}`, path: await ensureBenchModel(shape, d) };
    }));
  const cores = info.physicalCores;
  // The physical core count, plus 1 and 2 (DESIGN.md §6 asks for the best of these), within the machine.
  const peerThreads = args.list('peer-threads', [...new Set([cores, 1, 2])].map(String)).map(Number)
    .filter((t) => t >= 1 && t <= info.logicalCores).sort((a, b) => b - a);
  const prompts = args.list('prompts', ['128', '512']).map(Number);
  if (prompts.length === 0 || prompts.some((n) => !Number.isInteger(n) || n < 2)) throw new Error('--prompts must be token counts of at least 2');
  const decode = Math.max(2, args.int('decode', 32));
  const backend = args.string('vserve-backend', 'native');
  if (backend !== 'native' && backend !== 'reference') throw new Error(`--vserve-backend must be native or reference`);
  return {
    models,
    reps: Math.max(1, args.int('reps', 3)),
    decode,
    prompts,
    peerThreads,
    vserveThreads: args.int('threads', cores),
    vserveBackend: backend,
    peer: !args.flag('no-peer'),
    quietWaitMs: args.int('quiet-wait', 10) * 1000,
    contextSize: Math.max(...prompts) + decode + 1,
  };
}

/** What random prompts are made of: the vocabulary's normal tokens, after BOS where the tokenizer adds one. */
interface PromptVocabulary {
  normal: number[];
  bos?: number;
}

function promptVocabulary(file: GGUFFile): PromptVocabulary {
  const tokenizer = createTokenizer(file);
  const normal: number[] = [];
  for (let id = 0; id < tokenizer.vocabSize; id++) if (tokenizer.tokenType(id) === TokenType.Normal) normal.push(id);
  return { normal, bos: tokenizer.addBos ? tokenizer.bos : undefined };
}

function randomPrompt(length: number, v: PromptVocabulary, seed: number): number[] {
  const rng = new Xorshift128(seed);
  const start = v.bos === undefined ? [] : [v.bos];
  return [...start, ...Array.from({ length: length - start.length }, () => v.normal[rng.next() % v.normal.length]!)];
}

interface LoadedEngines {
  engines: SingleSequenceEngine[];
  peerModel?: PeerModel;
  unavailable: string[];
}

/** vserve, then one llama.cpp context per thread count on a shared model; what could not load is listed. */
async function loadEngines(path: string, o: Options): Promise<LoadedEngines> {
  const loaded: LoadedEngines = { engines: [], unavailable: [] };
  try {
    const vserve = VserveEngine.load(path, o.vserveBackend, o.vserveThreads, o.contextSize);
    if (vserve) loaded.engines.push(vserve);
    else loaded.unavailable.push(`vserve: the ${o.vserveBackend} backend is not available yet`);
  } catch (e) {
    loaded.unavailable.push(`vserve: ${(e as Error).message}`);
  }
  if (o.peer) {
    try {
      loaded.peerModel = await loadLlamaCppModel(path);
      for (const t of o.peerThreads) loaded.engines.push(await LlamaCppEngine.create(loaded.peerModel, t, o.contextSize, Math.max(...o.prompts)));
    } catch (e) {
      // node-llama-cpp is a devDependency: absent from production installs.
      loaded.unavailable.push(`llama.cpp: ${(e as Error).message}`);
    }
  }
  return loaded;
}

/** One repetition for one engine: every prompt's prefill, and decode after the first prompt. */
async function measureOnce(e: SingleSequenceEngine, prompts: number[][], o: Options, r: EngineResult): Promise<void> {
  await waitForQuiet(o.quietWaitMs);
  const probe = await nativeReadBandwidth();
  const contention = startContention();
  for (const [i, prompt] of prompts.entries()) {
    const before = i === 0 && probe ? probe(PAIRED_PROBE_BYTES, o.vserveThreads) : NaN;
    const timings = await e.run(prompt, i === 0 ? o.decode + 1 : 1);
    (r.prefill[prompt.length] ??= []).push(prompt.length / (timings.prefillMs / 1000));
    if (i === 0) {
      const after = probe ? probe(PAIRED_PROBE_BYTES, o.vserveThreads) : NaN;
      r.decode.push(timings.decodeMs.length / (timings.decodeMs.reduce((a, b) => a + b, 0) / 1000));
      r.decodeBandwidth.push((before + after) / 2);
      r.decodeBandwidthSpread.push(Math.abs(before - after) / Math.max(before, after));
    }
  }
  r.otherLoad.push(contention());
}

/** Buffer of the bandwidth probes around each decode run: far past the last-level cache, quick to read. */
const PAIRED_PROBE_BYTES = 512 * 1024 * 1024;

async function benchModel(model: { name: string; path: string }, o: Options): Promise<ModelResult> {
  const file = GGUFFile.open(model.path);
  const vocabulary = promptVocabulary(file);
  file.close();
  const traffic = decodeTraffic(model.path, KV_ELEM_BYTES);
  const decodePositions = o.prompts[0]! + o.decode / 2;
  process.stderr.write(`${model.name}: loading engines\n`);
  const { engines, peerModel, unavailable } = await loadEngines(model.path, o);
  const results = new Map(engines.map((e) => [e, { label: e.label, details: e.details, prefill: {}, decode: [], decodeBandwidth: [], decodeBandwidthSpread: [], otherLoad: [] } as EngineResult]));
  const prompts = o.prompts.map((n, i) => randomPrompt(n, vocabulary, 1000 + i));
  try {
    for (const e of engines) await e.run(prompts[0]!.slice(0, 16), 2); // warm caches, JIT and page cache
    for (let rep = 0; rep < o.reps; rep++) {
      // Alternate which engine goes first, so slow drifts (thermal, page cache) do not favour one side.
      const order = rep % 2 === 0 ? engines : [...engines].reverse();
      for (const e of order) {
        const r = results.get(e)!;
        if (r.error) continue;
        try {
          await measureOnce(e, prompts, o, r);
          process.stderr.write(`${model.name} rep ${rep + 1}/${o.reps} ${e.label}: ` +
            `${Object.entries(r.prefill).map(([n, v]) => `prefill${n} ${v.at(-1)!.toFixed(1)}`).join(', ')}, decode ${r.decode.at(-1)!.toFixed(2)} tok/s` +
            ` (other processes: ${Math.round(r.otherLoad.at(-1)! * 100)}% of the CPUs)\n`);
        } catch (err) {
          r.error = (err as Error).message;
          process.stderr.write(`${model.name} ${e.label}: ${r.error}\n`);
        }
      }
    }
  } finally {
    for (const e of engines) await e.close();
    await peerModel?.dispose();
  }
  // Timed with the engines gone, on the rows of vserve's last decode run (plain arrays, still valid).
  const rows = engines.find((e): e is VserveEngine => e instanceof VserveEngine)?.decodeLogits ?? [];
  let sampler: SamplerMeasurement | undefined;
  if (rows.length > 0) {
    await waitForQuiet(o.quietWaitMs);
    sampler = measureSamplerCost(rows);
    process.stderr.write(`${model.name} sampler: ${sampler.costs.map((c) => `${c.setting} ${c.msPerToken.toFixed(3)} ms`).join(', ')}\n`);
  }
  return {
    name: model.name, path: model.path, traffic, decodePositions,
    bytesPerDecodedToken: bytesPerDecodedToken(traffic, decodePositions),
    engines: [...results.values()], unavailable, sampler,
  };
}

/** Best (highest median) llama.cpp value of a metric across thread counts. */
function bestPeer(m: ModelResult, metric: (e: EngineResult) => number[]): { value: number; label: string } | undefined {
  let best: { value: number; label: string } | undefined;
  for (const e of m.engines.filter((x) => x.label.startsWith('llama.cpp'))) {
    const v = median(metric(e));
    if (Number.isFinite(v) && (!best || v > best.value)) best = { value: v, label: e.label };
  }
  return best;
}

/** A repetition counts as quiet when other processes used less than this share of the CPUs. */
const QUIET = 0.05;

/** Repetitions to report: the quiet ones, or all of them when none was. */
function reportedReps(e: EngineResult): number[] {
  const all = e.otherLoad.map((_, i) => i);
  const quiet = all.filter((i) => e.otherLoad[i]! < QUIET);
  return quiet.length > 0 ? quiet : all;
}

function summarize(m: ModelResult, prompts: number[], bw: BandwidthMeasurement, peak: MeasuredPeak | undefined) {
  const decodeLimitTokS = (bw.best.gbPerS * 1e9) / m.bytesPerDecodedToken;
  const pick = (e: EngineResult, samples: number[] = []) => reportedReps(e).map((i) => samples[i]!).filter(Number.isFinite);
  const metrics: Record<string, (e: EngineResult) => number[]> = Object.fromEntries([
    ...prompts.map((n) => [`prefill${n}`, (e: EngineResult) => pick(e, e.prefill[n])] as const),
    ['decode', (e: EngineResult) => pick(e, e.decode)] as const,
  ]);
  const engines = m.engines.map((e) => ({
    label: e.label,
    details: e.details,
    ...(e.error ? { error: e.error } : {}),
    medianTokS: Object.fromEntries(Object.entries(metrics).map(([k, f]) => [k, round(median(f(e)))])),
    samplesTokS: Object.fromEntries([
      ...prompts.map((n) => [`prefill${n}`, (e.prefill[n] ?? []).map((x) => round(x))] as const),
      ['decode', e.decode.map((x) => round(x))] as const,
    ]),
    decodeFractionOfLimit: round(median(metrics.decode!(e)) / decodeLimitTokS),
    // Each run against the bandwidth probed around it, then the median over the reported runs.
    decodeFractionOfPairedLimit: round(median(pick(e, e.decode.map((tokS, i) => (tokS * m.bytesPerDecodedToken) / (e.decodeBandwidth[i]! * 1e9))))),
    decodeBandwidthGBs: e.decodeBandwidth.map((x) => round(x)),
    // Prefill arithmetic (weights' multiply-adds + causal attention) per second against the measured int8
    // dot-product peak: the instructions quantized prefill runs on (f16/f32 models run on FMAs instead).
    prefillFractionOfInt8Peak: Object.fromEntries(prompts.map((n) => [n, peak ? round((median(pick(e, e.prefill[n])) * prefillOpsPerToken(m.traffic, n)) / (peak.int8Gops * 1e9)) : NaN])),
    decodeBandwidthSpread: e.decodeBandwidthSpread.map((x) => round(x, 2)),
    otherLoad: e.otherLoad.map((x) => round(x, 2)),
    /** Indices of the repetitions the medians use. */
    reportedReps: reportedReps(e),
    quietReps: e.otherLoad.filter((x) => x < QUIET).length,
  }));
  const vserve = m.engines.find((e) => e.label.startsWith('vserve'));
  const ratios = Object.fromEntries(Object.entries(metrics).map(([k, f]) => {
    const peer = bestPeer(m, f);
    const own = vserve ? median(f(vserve)) : NaN;
    return [k, { vserveOverLlamaCpp: round(own / (peer?.value ?? NaN)), bestLlamaCpp: peer?.label ?? null }];
  }));
  // The sampler against vserve's median decode step (1 / its reported decode tok/s).
  const decodeStepMs = vserve ? 1000 / median(metrics.decode!(vserve)) : NaN;
  const sampler = m.sampler && {
    ...m.sampler,
    decodeStepMs: round(decodeStepMs),
    targetFraction: SAMPLER_TARGET_FRACTION,
    costs: m.sampler.costs.map((c) => {
      const fraction = c.msPerToken / decodeStepMs;
      return { ...c, msPerToken: round(c.msPerToken), fractionOfDecodeStep: round(fraction), withinTarget: fraction <= SAMPLER_TARGET_FRACTION };
    }),
  };
  return { ...m, decodeLimitTokS: round(decodeLimitTokS), engines, ratios, sampler };
}

const fmt = (x: number, digits = 3) => (Number.isFinite(x) ? String(round(x, digits)) : 'n/a');
const pct = (x: number) => (Number.isFinite(x) ? `${Math.round(x * 100)}%` : 'n/a');
const gb = (bytes: number) => `${(bytes / 1e9).toFixed(2)} GB`;

function markdown(o: Options, bw: BandwidthMeasurement, models: ReturnType<typeof summarize>[], machine: ReturnType<typeof machineInfo>): string {
  const bwLine = bw.points.map((p) => `${fmt(p.gbPerS)} GB/s with ${p.threads} thread${p.threads > 1 ? 's' : ''}` +
    (p.otherLoad >= 0.05 ? ` (other processes used ${pct(p.otherLoad)} of the CPUs meanwhile: an underestimate)` : '')).join(', ');
  const header = ['model', 'engine', ...o.prompts.map((n) => `prefill ${n} tok/s`), 'decode tok/s', 'decode / BW limit', 'decode / paired BW', 'quiet runs'];
  const rows: (string | number)[][] = [];
  for (const m of models) {
    const first = `${m.name} (${gb(m.traffic.fileBytes)}; limit ${fmt(m.decodeLimitTokS)} tok/s)`;
    m.engines.forEach((e, i) => rows.push([
      i === 0 ? first : '',
      e.error ? `${e.label} (failed: ${e.error})` : e.label,
      ...o.prompts.map((n) => fmt(e.medianTokS[`prefill${n}`] ?? NaN)),
      fmt(e.medianTokS.decode ?? NaN),
      pct(e.decodeFractionOfLimit),
      pct(e.decodeFractionOfPairedLimit),
      `${e.quietReps}/${e.otherLoad.length}`,
    ]));
    for (const u of m.unavailable) rows.push([m.engines.length ? '' : first, u, ...o.prompts.map(() => '—'), '—', '—', '—', '']);
    rows.push(['', '**vserve / best llama.cpp**', ...[...o.prompts.map((n) => `prefill${n}`), 'decode'].map((k) => {
      const r = m.ratios[k]!.vserveOverLlamaCpp;
      return Number.isFinite(r) ? `${fmt(r, 2)}x` : 'n/a';
    }), '', '', '']);
  }
  return [
    `# Single sequence: vserve vs llama.cpp (node-llama-cpp ${NODE_LLAMA_CPP_VERSION})`,
    '',
    `${machine.cpu}, ${machine.physicalCores} physical cores, ${machine.memoryGiB} GiB, Node ${machine.node}. ` +
      `Read bandwidth (${bw.source === 'native' ? "vserve's native addon" : 'JS fallback: worker threads summing a shared buffer; may understate the true bandwidth'}): ${bwLine}.`,
    '',
    `Random-weight models from \`npm run bench -- gen-model\`; prompts are random token ids (same ids for both engines), ` +
      `evaluated in one batch from an empty context (time to the first generated token). Decode: ${o.decode} greedy tokens after the ` +
      `${o.prompts[0]}-token prompt. ${o.reps} repetitions, engines alternating; medians over the quiet runs (other processes used ` +
      `< ${pct(QUIET)} of the CPUs, measured from /proc/stat; each run first waits up to ${o.quietWaitMs / 1000} s for that), ` +
      `or over all runs when none was quiet. The decode limit is the best ` +
      `bandwidth divided by the bytes read per token (all weights except the token embedding table, plus f16 KV at the mean context). ` +
      `"Paired" divides each decode run by the bandwidth probed just before and just after it (median over runs): this host's bandwidth ` +
      `changes level over minutes, so a run is held to the limit of its own moment.`,
    '',
    markdownTable(header, rows),
    '',
  ].join('\n');
}

function samplerMarkdown(models: ReturnType<typeof summarize>[]): string {
  const measured = models.filter((m) => m.sampler);
  if (measured.length === 0) return '';
  const rows = measured.flatMap((m) => m.sampler!.costs.map((c, i) => [
    i === 0 ? `${m.name} (vocab ${m.sampler!.vocab}; decode step ${fmt(m.sampler!.decodeStepMs)} ms; top-p 0.9 keeps ${m.sampler!.topP90Tokens} tokens)` : '',
    c.setting,
    fmt(c.msPerToken),
    `${fmt((c.msPerToken / m.sampler!.decodeStepMs) * 100, 2)}%`,
    c.withinTarget ? 'yes' : '**no**',
  ]));
  const first = measured[0]!.sampler!;
  return `\nSampling (vserve's Sampler, ${first.kernels} kernels): each setting's \`sample()\` timed on the model's last ` +
    `${first.rows} decode logits rows, repeated, median of batches; against vserve's median decode step of the same model. ` +
    `Target: sampling costs <= ${pct(SAMPLER_TARGET_FRACTION)} of a decode step. "top-p 0.9 keeps" counts the tokens holding ` +
    '90% of the probability (median over the rows): random-weight models spread it far wider than trained ones, which makes ' +
    'top-p alone look at much more of the vocabulary than it would on a real model.\n\n' +
    markdownTable(['model', 'sampling', 'ms / token', 'of a decode step', `<= ${pct(SAMPLER_TARGET_FRACTION)}`], rows) + '\n';
}

export async function singleCommand(argv: readonly string[]): Promise<void> {
  const o = await options(argv);
  const machine = machineInfo();
  const threadCounts = Array.from({ length: machine.physicalCores }, (_, i) => i + 1);
  // Measured before the engines and after each model (each time after waiting for a quiet machine),
  // keeping the best per thread count: other processes only ever lower it.
  const measure = async () => {
    process.stderr.write('measuring read bandwidth\n');
    await waitForQuiet(o.quietWaitMs);
    return measureReadBandwidth(threadCounts);
  };
  let bw = await measure();
  const results: ModelResult[] = [];
  for (const m of o.models) {
    results.push(await benchModel(m, o));
    bw = bestBandwidth(bw, await measure());
  }
  const peak = measurePeakCompute(o.vserveThreads);
  const models = results.map((r) => summarize(r, o.prompts, bw, peak));
  const report = {
    benchmark: 'single',
    date: new Date().toISOString(),
    machine,
    options: { ...o, models: undefined },
    bandwidth: { ...bw, points: bw.points.map((p) => ({ ...p, gbPerS: round(p.gbPerS) })), best: { ...bw.best, gbPerS: round(bw.best.gbPerS) } },
    peakCompute: peak ? { ...peak, f32Gflops: round(peak.f32Gflops), int8Gops: round(peak.int8Gops) } : null,
    models,
  };
  let md = markdown(o, bw, models, machine);
  if (peak && Number.isFinite(peak.int8Gops)) {
    md += `\nPrefill against the measured int8 dot-product peak (${round(peak.int8Gops)} GOP/s on ${peak.threads} threads, ${peak.isa}; ` +
      'ops = 2 x (weight multiply-adds + causal attention) per token):\n' +
      models.flatMap((m) => m.engines.map((e) => `- ${m.name} ${e.label}: ` +
        o.prompts.map((n) => `prefill ${n} at ${pct(e.prefillFractionOfInt8Peak[n] ?? NaN)}`).join(', '))).join('\n') + '\n';
  }
  md += samplerMarkdown(models);
  const noisy = models.flatMap((m) => m.engines.filter((e) => e.quietReps === 0).map((e) => `${m.name} ${e.label}`));
  if (noisy.length > 0) md += `\nNote: no quiet run for ${noisy.join(', ')}: other processes were using the CPUs; those rows are low and noisy.\n`;
  writeReport('single', report, md);
}
