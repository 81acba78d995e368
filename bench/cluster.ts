// `npm run bench -- cluster`: scale-out on one machine, TinyLlama-1.1B Q8_0, replicas of one thread each.
//   1. A prefix computed by replica A, loaded from Redis by replica B (empty pool) against A recomputing it:
//      time to first token of a 2K-token prompt, back to back per prompt.
//   2. Tenants with long system prompts under Poisson arrivals through `vserve router`: prefix-aware routing
//      against round-robin (throughput, TTFT p50/p99), fresh replicas for each policy, measured after one
//      request per tenant. Each replica's pool holds about half the tenants' prompts (the cluster holds
//      them all), so where a tenant's requests go decides what is recomputed.
//   3. The Redis tier's put/get throughput against redis-benchmark's SET/GET on values of a block's size.
import { createTokenizer } from '../src/model/tokenizer/index.js';
import { GGUFFile } from '../src/model/gguf/reader.js';
import { streamCompletion, type RequestResult } from '../src/loadgen/client.js';
import { percentiles } from '../src/loadgen/report.js';
import { runLoad } from '../src/loadgen/run-load.js';
import { seededRandom } from '../src/loadgen/workload.js';
import { RedisServer } from '../test/helpers/redis-server.js';
import { BenchArgs } from './args.js';
import { CliProcess } from './cli-process.js';
import { machineInfo } from './machine.js';
import { ensureBenchModel } from './models.js';
import { markdownTable, writePartialReport, writeReport } from './report.js';
import { median, round } from './stats.js';
import { TierProcess } from './tier-process.js';
import { redisBenchmarkThroughput } from './tier-throughput.js';
import { WRITES_IN_FLIGHT } from '../src/kv/tiers/tiered-store.js';
import { NODE_FLAGS } from '../src/cli/node-flags.js';
import { DEFAULT_OVERLAP_WEIGHT } from '../src/router/routing-policy.js';

interface ClusterOptions {
  parts: number[];
  /** Part 1: prompt tokens and prompts (each computed on A, then loaded on B). */
  prefixTokens: number;
  prefixRepeats: number;
  /** Part 2: tenants, their system prompt tokens, the question and answer tokens, requests, arrivals per second. */
  tenants: number;
  systemTokens: number;
  questionTokens: number;
  answerTokens: number;
  requests: number;
  rate: number;
  /** Part 2: each replica's KV pool (bytes). */
  replicaKVMemory: string;
  /** Part 2: the prefix policy's --overlap-weight. */
  overlapWeight: number;
  /** Part 3: values per run, and runs (alternating tier and redis-benchmark). */
  tierValues: number;
  tierRuns: number;
  seed: number;
}

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

export async function clusterCommand(argv: readonly string[]): Promise<void> {
  const a = new BenchArgs(argv);
  const o: ClusterOptions = {
    parts: a.list('parts', ['1', '2', '3']).map(Number),
    prefixTokens: a.int('prefix-tokens', 2000),
    prefixRepeats: a.int('prefix-repeats', 3),
    tenants: a.int('tenants', 8),
    systemTokens: a.int('system-tokens', 1024),
    questionTokens: a.int('question-tokens', 32),
    answerTokens: a.int('answer-tokens', 8),
    requests: a.int('requests', 120),
    rate: Number(a.string('rate', '1')),
    replicaKVMemory: a.string('replica-kv-memory', '140MiB'),
    overlapWeight: Number(a.string('overlap-weight', String(DEFAULT_OVERLAP_WEIGHT))),
    tierValues: a.int('tier-values', 64),
    tierRuns: a.int('tier-runs', 7),
    seed: a.int('seed', 1),
  };
  const model = await ensureBenchModel('tinyllama-1.1b', 'q8_0');
  const vocab = normalTokenIds(model);
  // Part 1's Redis (part 3 starts one of its own).
  const redis = o.parts.includes(1) ? await RedisServer.start({ maxmemory: '4gb' }) : undefined;
  const data: Record<string, unknown> = { machine: machineInfo(), options: o, model };
  const md: string[] = ['# Scale-out: KV tiers in Redis and prefix-aware routing', ''];
  try {
    if (redis) {
      const r = await prefixFromRedis(model, redis, vocab, o);
      data.prefixFromRedis = r;
      md.push(...r.markdown, '');
      writePartialReport('cluster', data, md.join('\n'));
    }
    if (o.parts.includes(2)) {
      const r = await routing(model, vocab, o);
      data.routing = r;
      md.push(...r.markdown, '');
      writePartialReport('cluster', data, md.join('\n'));
    }
    if (o.parts.includes(3)) {
      const part1 = data.prefixFromRedis as { blockBytes: number; blocksPerPrompt: number } | undefined;
      // Without part 1: TinyLlama's 128-token block in f16 (22 layers x K and V x 4 heads x 64 x 2 bytes per
      // token), and the 15 whole blocks of its 2,000-token prompt.
      const r = await tierVsRedisBenchmark(model, part1?.blockBytes ?? 22 * 2 * 4 * 64 * 2 * 128, part1?.blocksPerPrompt ?? Math.floor(o.prefixTokens / 128), o);
      data.tierThroughput = r;
      md.push(...r.markdown, '');
    }
  } finally {
    await redis?.stop();
  }
  writeReport('cluster', data, md.join('\n'));
}

/** Token ids that are plain text pieces (no control or byte tokens), for prompts of an exact length. */
function normalTokenIds(model: string): number[] {
  const file = GGUFFile.open(model);
  try {
    const tokenizer = createTokenizer(file);
    const ids: number[] = [];
    const text = new TextDecoder();
    for (let id = 0; id < tokenizer.vocabSize; id++) if (/^[\p{L}\p{N} ]{2,}$/u.test(text.decode(tokenizer.tokenToPiece(id, false)))) ids.push(id);
    return ids;
  } finally {
    file.close();
  }
}

function randomTokens(vocab: readonly number[], n: number, rand: () => number): number[] {
  return Array.from({ length: n }, () => vocab[Math.floor(rand() * vocab.length)]!);
}

/** The name every replica serves the model under (the router passes requests on unchanged). */
const MODEL_NAME = 'tinyllama';

function replicaArgs(model: string, extra: string[]): string[] {
  return ['-m', model, '--served-model-name', MODEL_NAME, '--threads', '1', '--max-context', '2048', '--max-seqs', '8', ...extra];
}

async function ttft(url: string, prompt: readonly number[]): Promise<RequestResult> {
  const r = await streamCompletion({ url, model: MODEL_NAME }, 0, prompt, 2);
  if (!r.ok || r.ttftMs === undefined) throw new Error(`request failed: ${r.error ?? 'no token'}`);
  return r;
}

/** Waits until a replica's write-through queue is empty (its blocks are in the tiers). */
async function tierWritesSettled(replica: CliProcess): Promise<Map<string, number>> {
  for (;;) {
    const m = await replica.metrics();
    const pending = [...m].find(([k]) => k.startsWith('vserve:kv_tier_pending_write_bytes'))?.[1] ?? 0;
    if (pending === 0) return m;
    await sleep(20);
  }
}

/** The sum of a metric's samples whose labels include `labels`. */
const sample = (m: Map<string, number>, name: string, labels: Record<string, string> = {}) =>
  [...m]
    .filter(([k]) => (k === name || k.startsWith(`${name}{`)) && Object.entries(labels).every(([l, v]) => k.includes(`${l}="${v}"`)))
    .reduce((n, [, v]) => n + v, 0);

async function prefixFromRedis(model: string, redis: RedisServer, vocab: readonly number[], o: ClusterOptions) {
  const rand = seededRandom(o.seed);
  const args = replicaArgs(model, ['--kv-store', redis.address, '--kv-memory', '1GiB']);
  const a = await CliProcess.start('serve', args);
  const b = await CliProcess.start('serve', args);
  const rows: { recomputeMs: number; loadMs: number; cachedTokens: number; promptTokens: number }[] = [];
  try {
    for (let i = 0; i < o.prefixRepeats; i++) {
      const prompt = randomTokens(vocab, o.prefixTokens, rand);
      const computed = await ttft(a.url, prompt);
      await tierWritesSettled(a);
      const loaded = await ttft(b.url, prompt);
      rows.push({ recomputeMs: round(computed.ttftMs!, 1), loadMs: round(loaded.ttftMs!, 1), cachedTokens: loaded.cachedTokens, promptTokens: loaded.promptTokens });
      process.stderr.write(`  prefix ${i + 1}/${o.prefixRepeats}: recompute ${round(computed.ttftMs!, 0)} ms, from Redis ${round(loaded.ttftMs!, 0)} ms (${loaded.cachedTokens} cached)\n`);
    }
    const m = await b.metrics();
    const hitBlocks = sample(m, 'vserve:kv_tier_hit_blocks_total');
    const blockBytes = Math.round(sample(m, 'vserve:kv_tier_loaded_bytes_total') / Math.max(1, hitBlocks));
    const blocksPerPrompt = Math.max(1, Math.round(hitBlocks / o.prefixRepeats));
    const recompute = median(rows.map((r) => r.recomputeMs));
    const load = median(rows.map((r) => r.loadMs));
    const ratio = round(load / recompute, 4);
    return {
      rows, blockBytes, blocksPerPrompt, recomputeMedianMs: recompute, loadMedianMs: load, ratio,
      markdown: [
        `## 1. A ${o.prefixTokens}-token prefix from Redis against recomputing it (1 thread per replica)`, '',
        markdownTable(['prompt', 'recompute TTFT (ms)', 'from Redis TTFT (ms)', 'cached tokens', 'ratio'], rows.map((r, i) => [i + 1, r.recomputeMs, r.loadMs, `${r.cachedTokens}/${r.promptTokens}`, round(r.loadMs / r.recomputeMs, 4)])),
        '', `Median: ${load} ms from Redis against ${recompute} ms recomputed = ${ratio} (target <= 0.1). Blocks of ${blockBytes} bytes.`,
      ],
    };
  } finally {
    await Promise.all([a.terminate(), b.terminate()]);
  }
}

async function routing(model: string, vocab: readonly number[], o: ClusterOptions) {
  const rand = seededRandom(o.seed + 1);
  const systems = Array.from({ length: o.tenants }, () => randomTokens(vocab, o.systemTokens, rand));
  let t = 0;
  const plan = Array.from({ length: o.requests }, (_, index) => {
    t += (-Math.log(1 - rand()) / o.rate) * 1000;
    const tenant = Math.floor(rand() * o.tenants);
    return { index, tenant, prompt: [...systems[tenant]!, ...randomTokens(vocab, o.questionTokens, rand)], maxTokens: o.answerTokens, at: t };
  });
  const policies = ['round-robin', 'prefix'] as const;
  const runs: Record<string, ReturnType<typeof summarize> & { decisions: Record<string, number> }> = {};
  for (const policy of policies) {
    const replicas = await Promise.all([0, 1].map(() => CliProcess.start('serve', replicaArgs(model, ['--kv-memory', o.replicaKVMemory]))));
    const router = await CliProcess.start('router', [...replicas.flatMap((r) => ['--replica', r.url]), '-m', model, '--policy', policy, '--overlap-weight', String(o.overlapWeight)]);
    try {
      // Steady state: every tenant's system prompt has been computed once, wherever the policy sent it.
      await Promise.all(systems.map((system, index) => streamCompletion({ url: router.url, model: MODEL_NAME }, index, [...system, ...randomTokens(vocab, o.questionTokens, rand)], 1)));
      const { results, durationS } = await runLoad({ url: router.url, model: MODEL_NAME }, plan, 0);
      const m = await router.metrics();
      const decisions = Object.fromEntries(['cached_prefix', 'load', 'turn'].map((basis) => [basis, sample(m, 'vserve:router_decisions_total', { policy, basis })]));
      runs[policy] = { ...summarize(results, durationS), decisions };
      process.stderr.write(`  ${policy}: ${JSON.stringify(runs[policy])}\n`);
    } finally {
      await router.terminate();
      await Promise.all(replicas.map((r) => r.terminate()));
    }
  }
  const rr = runs['round-robin']!;
  const px = runs.prefix!;
  const throughputRatio = round(px.outputTokPerS / rr.outputTokPerS, 3);
  const ttftRatio = round(px.ttftMs.p50 / rr.ttftMs.p50, 3);
  return {
    plan: { tenants: o.tenants, systemTokens: o.systemTokens, questionTokens: o.questionTokens, answerTokens: o.answerTokens, requests: o.requests, rate: o.rate, replicaKVMemory: o.replicaKVMemory, overlapWeight: o.overlapWeight },
    runs, throughputRatio, ttftP50Ratio: ttftRatio,
    markdown: [
      `## 2. ${o.tenants} tenants with ${o.systemTokens}-token system prompts (+${o.questionTokens}-token questions, ${o.answerTokens}-token answers), ${o.requests} requests at ${o.rate}/s after one per tenant, 2 replicas of 1 thread (KV pool ${o.replicaKVMemory} each)`, "",
      markdownTable(
        ['policy', 'output tok/s', 'requests/s', 'TTFT p50 (ms)', 'TTFT p99 (ms)', 'cached prompt tokens', 'failed'],
        policies.map((p) => [p, runs[p]!.outputTokPerS, runs[p]!.requestsPerS, runs[p]!.ttftMs.p50, runs[p]!.ttftMs.p99, `${round(runs[p]!.cachedFraction * 100, 1)}%`, runs[p]!.failed]),
      ),
      '', `Prefix-aware / round-robin: throughput ${throughputRatio}x (target >= 1.5), TTFT p50 ${ttftRatio} (target <= 0.33).`,
    ],
  };
}

function summarize(results: RequestResult[], durationS: number) {
  const ok = results.filter((r) => r.ok);
  const output = ok.reduce((n, r) => n + r.completionTokens, 0);
  const prompt = ok.reduce((n, r) => n + r.promptTokens, 0);
  const cached = ok.reduce((n, r) => n + r.cachedTokens, 0);
  const p = percentiles(ok.map((r) => r.ttftMs ?? r.e2eMs));
  return {
    durationS: round(durationS, 2), failed: results.length - ok.length, outputTokPerS: round(output / durationS, 2), requestsPerS: round(ok.length / durationS, 3),
    ttftMs: { p50: round(p.p50, 0), p99: round(p.p99, 0) }, cachedFraction: prompt ? cached / prompt : 0,
  };
}

/**
 * Part 3 measures a Redis as deployed: at its memory limit and evicting least recently used blocks, so a
 * new value reuses memory the server already holds. A Redis still growing takes memory the host hands out
 * for the first time, which is slow on a virtual machine; redis-benchmark's SET, one key overwritten, never
 * grows, so the tier's puts would carry a cost the baseline does not.
 */
const TIER_REDIS_MAXMEMORY = 2 ** 30;

/**
 * `keysPerGet`: the blocks one prompt loads (part 1), fetched in one call as a loading replica does. The
 * tier runs in a child process under the node flags a replica runs under, beside the model
 * (tier-process.ts).
 */
async function tierVsRedisBenchmark(modelPath: string, blockBytes: number, keysPerGet: number, o: ClusterOptions) {
  const redis = await RedisServer.start({ maxmemory: TIER_REDIS_MAXMEMORY });
  const runs: { tierPut: number; tierGet: number; benchSet: number; benchGet: number }[] = [];
  let missing = 0;
  let tier: TierProcess | undefined;
  try {
    tier = await TierProcess.start(redis.address, 10_000, modelPath);
    // Past the limit, so that Redis evicts from here on.
    await tier.fill(blockBytes, Math.ceil((1.5 * TIER_REDIS_MAXMEMORY) / blockBytes), WRITES_IN_FLIGHT);
    // One untimed round of each first: the tier's first megabyte-sized reads grow Node's heap and compile
    // its paths, which a long-running replica has long done.
    await tier.measure(blockBytes, o.tierValues, keysPerGet, WRITES_IN_FLIGHT);
    await redisBenchmarkThroughput(redis.port, blockBytes, o.tierValues);
    for (let i = 0; i < o.tierRuns; i++) {
      // Gets of a 2K-token prompt's blocks at once, puts as the write-through queue issues them.
      const t = await tier.measure(blockBytes, o.tierValues, keysPerGet, WRITES_IN_FLIGHT);
      const b = await redisBenchmarkThroughput(redis.port, blockBytes, o.tierValues);
      missing += t.missing;
      runs.push({ tierPut: round(t.putGBps, 3), tierGet: round(t.getGBps, 3), benchSet: round(b.setGBps, 3), benchGet: round(b.getGBps, 3) });
    }
  } finally {
    await tier?.close();
    await redis.stop();
  }
  const med = (k: keyof (typeof runs)[number]) => median(runs.map((r) => r[k]));
  const putRatio = round(med('tierPut') / med('benchSet'), 3);
  const getRatio = round(med('tierGet') / med('benchGet'), 3);
  return {
    blockBytes, redisMaxmemory: TIER_REDIS_MAXMEMORY, runs, missing, putRatio, getRatio,
    markdown: [
      `## 3. The Redis tier against redis-benchmark (one client), values of ${blockBytes} bytes`, '',
      `The tier (in a process under vserve's node flags: ${NODE_FLAGS.join(' ')}) gets ${keysPerGet} keys per call (one prompt's blocks) and has ${WRITES_IN_FLIGHT} puts in flight (the write-through queue); redis-benchmark: one connection, no pipelining. Redis is at its ${TIER_REDIS_MAXMEMORY / 2 ** 30} GiB limit, evicting (allkeys-lru); values the tier missed: ${missing}.`, '',
      markdownTable(['run', 'tier put GB/s', 'SET GB/s', 'tier get GB/s', 'GET GB/s'], runs.map((r, i) => [i + 1, r.tierPut, r.benchSet, r.tierGet, r.benchGet])),
      '', `Medians: put ${putRatio}x of SET, get ${getRatio}x of GET (target >= 0.5).`,
    ],
  };
}
