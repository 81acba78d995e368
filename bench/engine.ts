// `npm run bench -- engine`: the serving engine under synthetic load on a generated TinyLlama-1.1B.
// Each run loads an Engine (worker thread), replays the same Poisson-arrival workload through it, and
// times every token as the caller sees it: throughput, TTFT and time-between-tokens percentiles. Runs
// compare the schedulers (sarathi / vllm prefill-first / static) and the KV managers (virtual / paged /
// static); a prepacking run compares packed and padded prefill of prompts of very different lengths.
import { Engine, type EngineOptions, type EngineStats } from '../src/index.js';
import type { KVManagerKind, SchedulerKind } from '../src/engine/engine-types.js';
import { loadModel } from '../src/model/load.js';
import { BenchArgs } from './args.js';
import { benchPrepacking, type PrepackingResult } from './engine-prepacking.js';
import { makeWorkload, type BenchRequest, type LengthMix, type WorkloadSpec } from './engine-workload.js';
import { machineInfo } from './machine.js';
import { ensureBenchModel, isBenchDType, isShapeName } from './models.js';
import { markdownTable, writeReport } from './report.js';
import { percentile, round } from './stats.js';

interface RunConfig {
  mix: LengthMix;
  scheduler: SchedulerKind;
  kvManager: KVManagerKind;
}

interface RunResult extends RunConfig {
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
}

const sleep = (ms: number) => new Promise((r) => setTimeout(r, Math.max(0, ms)));

async function runWorkload(modelPath: string, options: EngineOptions, cfg: RunConfig, workload: BenchRequest[]): Promise<RunResult> {
  const engine = await Engine.load(modelPath, options);
  try {
    for await (const _ of engine.generate(workload[0]!.prompt.slice(0, 8), { temperature: 0, maxTokens: 2 })); // warm-up
    const base = await engine.stats();
    let peakKVPages = 0;
    const sampler = setInterval(() => void engine.stats().then((s) => (peakKVPages = Math.max(peakKVPages, s.kv.usedPages)), () => {}), 250);
    const ttft: number[] = [];
    const tbt: number[] = [];
    let outputTokens = 0;
    const t0 = performance.now();
    await Promise.all(workload.map(async (r) => {
      await sleep(t0 + r.at * 1000 - performance.now());
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
    clearInterval(sampler);
    const end: EngineStats = await engine.stats();
    const promptTokens = workload.reduce((n, r) => n + r.prompt.length, 0);
    return {
      ...cfg,
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
    };
  } finally {
    await engine.close();
  }
}

/** Each scheduler on the virtual KV manager, then each KV manager under sarathi (--full: every pair). */
function plan(mixes: LengthMix[], schedulers: SchedulerKind[], kvs: KVManagerKind[], full: boolean): RunConfig[] {
  const runs: RunConfig[] = [];
  const add = (r: RunConfig) => {
    if (!runs.some((x) => x.mix === r.mix && x.scheduler === r.scheduler && x.kvManager === r.kvManager)) runs.push(r);
  };
  for (const mix of mixes) {
    for (const scheduler of schedulers) {
      for (const kvManager of kvs) if (full || kvManager === kvs[0] || (scheduler === schedulers[0] && mix === mixes[0])) add({ mix, scheduler, kvManager });
    }
  }
  return runs;
}

export async function engineCommand(argv: readonly string[]): Promise<void> {
  const args = new BenchArgs(argv);
  const machine = machineInfo();
  const shape = args.string('shape', 'tinyllama-1.1b');
  const dtype = args.string('dtype', 'q8_0');
  if (!isShapeName(shape)) throw new Error(`unknown --shape "${shape}"`);
  if (!isBenchDType(dtype)) throw new Error(`unknown --dtype "${dtype}"`);
  const threads = args.int('threads', machine.physicalCores);
  const maxContext = args.int('max-context', 512);
  const chunk = args.int('max-batch-tokens', 64);
  const spec = (mix: LengthMix): WorkloadSpec => ({
    requests: args.int('requests', 16),
    rate: Number(args.string('rate', '0.5')),
    mix,
    promptLen: [args.int('prompt-min', 16), args.int('prompt-max', 192)],
    outputLen: [args.int('output-min', 8), args.int('output-max', 48)],
    seed: args.int('seed', 7),
  });
  const modelPath = await ensureBenchModel(shape, dtype);
  const loaded = loadModel(modelPath, { backend: 'native', threads });
  const vocab = loaded.model.config.vocabSize;
  const bos = loaded.tokenizer.bos ?? 1;

  const runs = plan(
    args.list('mixes', ['uniform', 'zipf']) as LengthMix[],
    args.list('schedulers', ['sarathi', 'vllm', 'static']) as SchedulerKind[],
    args.list('kv', ['virtual', 'paged', 'static']) as KVManagerKind[],
    args.flag('full'),
  );
  const results: RunResult[] = [];
  for (const cfg of runs) {
    process.stderr.write(`engine bench: ${cfg.mix} workload, ${cfg.scheduler} scheduler, ${cfg.kvManager} KV...\n`);
    const options: EngineOptions = {
      kvManager: cfg.kvManager, scheduler: cfg.scheduler, threads, maxContext, maxSeqs: args.int('max-seqs', 16),
      // Prefill-first and static batching prefill whole prompts, so their budget is a whole context (as vLLM's
      // max_num_batched_tokens >= max_model_len); Sarathi's small budget is what bounds its step time.
      maxBatchTokens: cfg.scheduler === 'sarathi' ? chunk : maxContext,
    };
    results.push(await runWorkload(modelPath, options, cfg, makeWorkload(spec(cfg.mix), vocab, bos)));
  }

  const lengths = args.list('prepack-lengths', ['16', '24', '32', '40', '48', '64', '96', '256']).map(Number);
  const prepacking: PrepackingResult | undefined = args.flag('no-prepacking') ? undefined : benchPrepacking(loaded, lengths, args.int('prepack-repeats', 2));
  loaded.model.backend.close();
  loaded.model.close();

  const report = { benchmark: 'engine', date: new Date().toISOString(), machine, model: { shape, dtype }, threads, maxContext, workloads: { uniform: spec('uniform'), zipf: spec('zipf') }, runs: results, prepacking };
  const md = [
    `# vserve engine: ${shape} ${dtype}, native backend, ${threads} threads`,
    '',
    `${spec('uniform').requests} requests per run, Poisson arrivals at ${spec('uniform').rate}/s; prompts ${spec('uniform').promptLen.join('–')} tokens, outputs ${spec('uniform').outputLen.join('–')}; greedy.`,
    'TTFT and TBT (time between tokens) as the caller sees them; throughput = tokens / makespan.',
    '',
    markdownTable(
      ['mix', 'scheduler', 'KV', 'budget', 'out tok/s', 'all tok/s', 'TTFT p50', 'TTFT p99', 'TBT p50', 'TBT p99', 'preempt', 'peak KV pages'],
      results.map((r) => [r.mix, r.scheduler, r.kvManager, r.maxBatchTokens, r.outputTokS, r.totalTokS, r.ttftMs.p50, r.ttftMs.p99, r.tbtMs.p50, r.tbtMs.p99, r.preemptions, r.peakKVPages]),
    ),
    '',
    ...comparisons(results),
    '',
    prepacking
      ? `Prepacking: prompts of ${prepacking.prompts.join(', ')} tokens; packed ${prepacking.realTokens} tokens in ${prepacking.packedMs} ms, padded ${prepacking.paddedTokens} tokens in ${prepacking.paddedMs} ms: **${prepacking.speedup}x**.`
      : '',
    '',
  ].join('\n');
  writeReport('engine', report, md);
}

/** The targets, stated against this run's numbers. */
function comparisons(results: RunResult[]): string[] {
  const find = (mix: LengthMix, s: SchedulerKind, kv: KVManagerKind) => results.find((r) => r.mix === mix && r.scheduler === s && r.kvManager === kv);
  const lines: string[] = [];
  for (const mix of ['uniform', 'zipf'] as const) {
    const sarathi = find(mix, 'sarathi', 'virtual');
    const vllm = find(mix, 'vllm', 'virtual');
    if (sarathi && vllm) {
      lines.push(`- ${mix}: Sarathi TBT p99 / prefill-first TBT p99 = ${round(sarathi.tbtMs.p99 / vllm.tbtMs.p99)} (target <= 0.33) at throughput ratio ${round(sarathi.outputTokS / vllm.outputTokS)} (target 0.9–1.1).`);
    }
    const virtual = find(mix, 'sarathi', 'virtual');
    const paged = find(mix, 'sarathi', 'paged');
    if (virtual && paged) lines.push(`- ${mix}: virtual / paged KV throughput = ${round(virtual.totalTokS / paged.totalTokS)} (target >= 1).`);
  }
  return lines;
}
