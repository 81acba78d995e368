// `npm run bench -- engine`: the serving engine under synthetic load on a generated TinyLlama-1.1B.
// Each run loads an Engine (worker thread), replays a workload through it and times every token as the
// caller sees it: throughput, TTFT and time-between-tokens percentiles. Two kinds of run:
//   online  — Poisson arrivals of a mixed workload (long prompts arriving while others decode), one run
//             per scheduler: what Sarathi's chunked prefill does to decode latency, and at what throughput;
//   offline — every request at t = 0 (vLLM's throughput benchmark), one run per KV manager: throughput is
//             then the engine's capacity, not the arrival rate, so KV layouts can be compared by it.
// Every configuration runs --reps times, the configurations alternating, and medians are reported;
// each run first waits for the machine to go quiet and records how busy other processes kept it.
// A prepacking run compares packed and padded prefill of prompts of very different lengths.
import { Engine, ENGINE_DEFAULTS, type EngineOptions, type EngineStats } from '../src/index.js';
import type { KVManagerKind, SchedulerKind } from '../src/engine/engine-types.js';
import { loadModel } from '../src/model/load.js';
import { BenchArgs } from './args.js';
import { startContention, waitForQuiet } from './contention.js';
import { benchPrepacking, type PrepackingResult } from './engine-prepacking.js';
import { makeWorkload, type BenchRequest, type LengthMix, type WorkloadSpec } from './engine-workload.js';
import { machineInfo } from './machine.js';
import { ensureBenchModel, isBenchDType, isShapeName } from './models.js';
import { markdownTable, writeReport } from './report.js';
import { median, percentile, round } from './stats.js';

type Arrival = 'online' | 'offline';

interface RunConfig {
  arrival: Arrival;
  mix: LengthMix;
  scheduler: SchedulerKind;
  kvManager: KVManagerKind;
}

interface RunResult extends RunConfig {
  rep: number;
  maxBatchTokens: number;
  makespanS: number;
  outputTokS: number;
  totalTokS: number;
  ttftMs: { p50: number; p99: number };
  tbtMs: { p50: number; p99: number };
  preemptions: number;
  steps: number;
  peakKVPages: number;
  kvPageBytes: number;
  /** Share of the CPUs other processes used during the run. */
  otherLoad: number;
  /** Time the KV manager spent in mmap/munmap (virtual KV) as a share of the engine's step time. */
  kvMapShare: number;
}

/** The medians of one configuration's repetitions. */
interface Summary extends RunConfig {
  reps: number;
  maxBatchTokens: number;
  outputTokS: number;
  totalTokS: number;
  ttftP50: number;
  ttftP99: number;
  tbtP50: number;
  tbtP99: number;
  preemptions: number;
  peakKVPages: number;
  otherLoad: number;
  kvMapShare: number;
}

const sleep = (ms: number) => new Promise((r) => setTimeout(r, Math.max(0, ms)));

async function runWorkload(modelPath: string, options: EngineOptions, cfg: RunConfig, rep: number, workload: BenchRequest[]): Promise<RunResult> {
  const engine = await Engine.load(modelPath, options);
  try {
    for await (const _ of engine.generate(workload[0]!.prompt.slice(0, 8), { temperature: 0, maxTokens: 2 })); // warm-up
    const base = await engine.stats();
    let peakKVPages = 0;
    const sampler = setInterval(() => void engine.stats().then((s) => (peakKVPages = Math.max(peakKVPages, s.kv.usedPages)), () => {}), 250);
    const ttft: number[] = [];
    const tbt: number[] = [];
    let outputTokens = 0;
    const contention = startContention();
    const t0 = performance.now();
    await Promise.all(workload.map(async (r) => {
      if (cfg.arrival === 'online') await sleep(t0 + r.at * 1000 - performance.now());
      const sent = performance.now();
      let last: number | undefined;
      for await (const d of engine.generate(r.prompt, { temperature: 0, maxTokens: r.maxTokens })) {
        if (d.tokens.length === 0) continue;
        const now = performance.now();
        if (last === undefined) ttft.push(now - sent);
        else tbt.push(now - last);
        last = now;
        outputTokens += d.tokens.length;
      }
    }));
    const makespanS = (performance.now() - t0) / 1000;
    const otherLoad = contention();
    clearInterval(sampler);
    const end: EngineStats = await engine.stats();
    const promptTokens = workload.reduce((n, r) => n + r.prompt.length, 0);
    return {
      ...cfg,
      rep,
      maxBatchTokens: engine.info.maxBatchTokens,
      makespanS: round(makespanS),
      outputTokS: round(outputTokens / makespanS),
      totalTokS: round((outputTokens + promptTokens) / makespanS),
      ttftMs: { p50: round(percentile(ttft, 50)), p99: round(percentile(ttft, 99)) },
      tbtMs: { p50: round(percentile(tbt, 50)), p99: round(percentile(tbt, 99)) },
      preemptions: end.step.preemptions - base.step.preemptions,
      steps: end.step.steps - base.step.steps,
      peakKVPages,
      kvPageBytes: end.kv.pageBytes,
      otherLoad: round(otherLoad, 2),
      kvMapShare: round((end.kv.mapNs + end.kv.unmapNs - base.kv.mapNs - base.kv.unmapNs) / 1e6 / (end.step.totalMs - base.step.totalMs)),
    };
  } finally {
    await engine.close();
  }
}

/**
 * Online: every scheduler on the first KV manager. Offline: every KV manager under the first scheduler,
 * and the second scheduler (prefill-first) on the first KV manager, which shows what chunking costs in
 * capacity. Runs that are compared sit next to each other, so each repetition gives a ratio taken close
 * in time.
 */
function plan(mixes: LengthMix[], schedulers: SchedulerKind[], kvs: KVManagerKind[], arrivals: Arrival[]): RunConfig[] {
  const runs: RunConfig[] = [];
  for (const mix of mixes) {
    if (arrivals.includes('online')) for (const scheduler of schedulers) runs.push({ arrival: 'online', mix, scheduler, kvManager: kvs[0]! });
    if (!arrivals.includes('offline')) continue;
    if (schedulers[1]) runs.push({ arrival: 'offline', mix, scheduler: schedulers[1], kvManager: kvs[0]! });
    for (const kvManager of kvs) runs.push({ arrival: 'offline', mix, scheduler: schedulers[0]!, kvManager });
  }
  return runs;
}

function summarize(results: RunResult[], cfg: RunConfig): Summary {
  const rs = results.filter((r) => r.arrival === cfg.arrival && r.mix === cfg.mix && r.scheduler === cfg.scheduler && r.kvManager === cfg.kvManager);
  const med = (f: (r: RunResult) => number) => round(median(rs.map(f)));
  return {
    ...cfg,
    reps: rs.length,
    maxBatchTokens: rs[0]!.maxBatchTokens,
    outputTokS: med((r) => r.outputTokS),
    totalTokS: med((r) => r.totalTokS),
    ttftP50: med((r) => r.ttftMs.p50),
    ttftP99: med((r) => r.ttftMs.p99),
    tbtP50: med((r) => r.tbtMs.p50),
    tbtP99: med((r) => r.tbtMs.p99),
    preemptions: med((r) => r.preemptions),
    peakKVPages: med((r) => r.peakKVPages),
    otherLoad: round(Math.max(...rs.map((r) => r.otherLoad)), 2),
    kvMapShare: med((r) => r.kvMapShare),
  };
}

export async function engineCommand(argv: readonly string[]): Promise<void> {
  const args = new BenchArgs(argv);
  const machine = machineInfo();
  const shape = args.string('shape', 'tinyllama-1.1b');
  const dtype = args.string('dtype', 'q8_0');
  if (!isShapeName(shape)) throw new Error(`unknown --shape "${shape}"`);
  if (!isBenchDType(dtype)) throw new Error(`unknown --dtype "${dtype}"`);
  const threads = args.int('threads', machine.physicalCores);
  const maxContext = args.int('max-context', 1024);
  // Sarathi picks its budget from the step time decode latency can afford; on 2 cores 64 prompt tokens
  // take ~0.15 s (prefill runs ~400 tok/s).
  const budget = args.int('max-batch-tokens', 64);
  const reps = Math.max(1, args.int('reps', 3));
  const quietWaitMs = args.int('quiet-wait', 10) * 1000;
  const offlineRequests = Math.max(1, args.int('offline-requests', 16));
  const spec = (mix: LengthMix): WorkloadSpec => ({
    requests: args.int('requests', 24),
    rate: Number(args.string('rate', '0.5')),
    mix,
    promptLen: [args.int('prompt-min', 128), args.int('prompt-max', 512)],
    outputLen: [args.int('output-min', 16), args.int('output-max', 128)],
    seed: args.int('seed', 7),
  });
  const modelPath = await ensureBenchModel(shape, dtype);
  const loaded = loadModel(modelPath, { backend: 'native', threads });
  const vocab = loaded.model.config.vocabSize;
  const bos = loaded.tokenizer.bos ?? 1;

  const configs = plan(
    args.list('mixes', ['uniform']) as LengthMix[],
    args.list('schedulers', ['sarathi', 'vllm', 'static']) as SchedulerKind[],
    args.list('kv', ['virtual', 'paged', 'static']) as KVManagerKind[],
    args.list('arrivals', ['online', 'offline']) as Arrival[],
  );
  const results: RunResult[] = [];
  for (let rep = 0; rep < reps; rep++) {
    // Alternate the order so slow drifts of the machine do not favour the configurations that run first.
    for (const cfg of rep % 2 === 0 ? configs : [...configs].reverse()) {
      process.stderr.write(`engine bench rep ${rep + 1}/${reps}: ${cfg.arrival} ${cfg.mix} workload, ${cfg.scheduler} scheduler, ${cfg.kvManager} KV... `);
      await waitForQuiet(quietWaitMs);
      const options: EngineOptions = {
        kvManager: cfg.kvManager, scheduler: cfg.scheduler, threads, maxContext, maxSeqs: args.int('max-seqs', ENGINE_DEFAULTS.maxSeqs),
        // Prefill-first and static batching prefill whole prompts, so their budget is a whole context (as vLLM's
        // max_num_batched_tokens >= max_model_len); Sarathi's small budget is what bounds its step time.
        maxBatchTokens: cfg.scheduler === 'sarathi' ? budget : maxContext,
      };
      const workload = makeWorkload(spec(cfg.mix), vocab, bos);
      const r = await runWorkload(modelPath, options, cfg, rep, cfg.arrival === 'offline' ? workload.slice(0, offlineRequests) : workload);
      process.stderr.write(`${r.totalTokS} tok/s, TBT p99 ${r.tbtMs.p99} ms (others used ${Math.round(r.otherLoad * 100)}% of the CPUs)\n`);
      results.push(r);
    }
  }
  const summaries = configs.map((c) => summarize(results, c));

  const lengths = args.list('prepack-lengths', ['16', '24', '32', '40', '48', '64', '96', '256']).map(Number);
  const prepacking: PrepackingResult | undefined = args.flag('no-prepacking') ? undefined : benchPrepacking(loaded, lengths, args.int('prepack-repeats', 2));
  loaded.model.backend.close();
  loaded.model.close();

  const w = spec('uniform');
  const report = { benchmark: 'engine', date: new Date().toISOString(), machine, model: { shape, dtype }, threads, maxContext, reps, workload: w, summaries, runs: results, prepacking };
  const md = [
    `# vserve engine: ${shape} ${dtype}, native backend, ${threads} threads`,
    '',
    `${w.requests} requests per run; prompts ${w.promptLen.join('–')} tokens, outputs ${w.outputLen.join('–')}; greedy; max context ${maxContext}, ` +
      `Sarathi budget ${budget} tokens per step. Online: Poisson arrivals at ${w.rate}/s. Offline: the first ${offlineRequests} requests, all at t = 0. ` +
      `Medians of ${reps} runs per row (configurations alternating; each run waits for a quiet machine; "others" = the most CPU ` +
      'other processes used during any of them). TTFT and TBT (time between tokens) as the caller sees them; throughput = tokens / makespan.',
    '',
    markdownTable(
      ['arrival', 'mix', 'scheduler', 'KV', 'budget', 'out tok/s', 'all tok/s', 'TTFT p50 ms', 'TTFT p99 ms', 'TBT p50 ms', 'TBT p99 ms', 'preempt', 'peak KV pages', 'KV map / step', 'others'],
      summaries.map((s) => [s.arrival, s.mix, s.scheduler, s.kvManager, s.maxBatchTokens, s.outputTokS, s.totalTokS, s.ttftP50, s.ttftP99, s.tbtP50, s.tbtP99, s.preemptions, s.peakKVPages, s.kvManager === 'virtual' ? `${round(s.kvMapShare * 100, 2)}%` : '—', `${Math.round(s.otherLoad * 100)}%`]),
    ),
    '',
    ...comparisons(summaries, results),
    '',
    prepacking
      ? `Prepacking: prompts of ${prepacking.prompts.join(', ')} tokens; packed ${prepacking.realTokens} tokens in ${prepacking.packedMs} ms, padded ${prepacking.paddedTokens} tokens in ${prepacking.paddedMs} ms: **${prepacking.speedup}x** (target >= 1.5x).`
      : '',
    '',
  ].join('\n');
  writeReport('engine', report, md);
}

/**
 * The targets against this run: the median over repetitions of each repetition's own ratio (the
 * two runs of a ratio ran back to back, so slow changes of the machine cancel), with the per-repetition
 * ratios listed.
 */
function comparisons(summaries: Summary[], results: RunResult[]): string[] {
  const lines: string[] = [];
  const same = (a: RunConfig, b: RunConfig) => a.arrival === b.arrival && a.mix === b.mix && a.scheduler === b.scheduler && a.kvManager === b.kvManager;
  const ratios = (a: RunConfig, b: RunConfig, f: (r: RunResult) => number) => {
    const reps = [...new Set(results.map((r) => r.rep))];
    return reps.flatMap((rep) => {
      const x = results.find((r) => r.rep === rep && same(r, a));
      const y = results.find((r) => r.rep === rep && same(r, b));
      return x && y ? [f(x) / f(y)] : [];
    });
  };
  const show = (xs: number[]) => `**${round(median(xs))}** (runs: ${xs.map((x) => round(x)).join(', ')})`;
  for (const mix of new Set(summaries.map((s) => s.mix))) {
    const has = (c: RunConfig) => summaries.some((s) => same(s, c));
    const online = (scheduler: SchedulerKind): RunConfig => ({ arrival: 'online', mix, scheduler, kvManager: summaries.find((s) => s.arrival === 'online')?.kvManager ?? 'virtual' });
    if (has(online('sarathi')) && has(online('vllm'))) {
      lines.push(`- ${mix}, online: Sarathi TBT p99 / prefill-first TBT p99 = ${show(ratios(online('sarathi'), online('vllm'), (r) => r.tbtMs.p99))} ` +
        `(target <= 0.33), throughput ratio ${show(ratios(online('sarathi'), online('vllm'), (r) => r.totalTokS))} (target 0.9–1.1).`);
    }
    const offline = summaries.filter((s) => s.arrival === 'offline' && s.mix === mix);
    // The scheduler the KV managers were compared under: the one with the most offline runs.
    const count = (x: SchedulerKind) => offline.filter((o) => o.scheduler === x).length;
    const scheduler = offline.map((o) => o.scheduler).sort((a, b) => count(b) - count(a))[0];
    if (!scheduler) continue;
    const at = (kvManager: KVManagerKind, s: SchedulerKind = scheduler): RunConfig => ({ arrival: 'offline', mix, scheduler: s, kvManager });
    for (const other of ['paged', 'static'] as const) {
      if (has(at('virtual')) && has(at(other))) {
        lines.push(`- ${mix}, offline: virtual / ${other} KV throughput = ${show(ratios(at('virtual'), at(other), (r) => r.totalTokS))}${other === 'paged' ? ' (target >= 1)' : ''}.`);
      }
    }
    const kv0 = offline.find((o) => o.scheduler === scheduler)!.kvManager;
    const prefillFirst = offline.find((s) => s.scheduler !== scheduler);
    if (prefillFirst && has(at(kv0))) {
      lines.push(`- ${mix}, offline: ${scheduler} / ${prefillFirst.scheduler} throughput (capacity cost of the chunk budget) = ` +
        `${show(ratios(at(kv0), at(kv0, prefillFirst.scheduler), (r) => r.totalTokS))}.`);
    }
  }
  return lines;
}
