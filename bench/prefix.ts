// `npm run bench -- prefix`: automatic prefix caching on the generated TinyLlama-1.1B, four parts:
//   1 shared system prompt — 16 users, one 1,024-token system prompt + a 32-token question each, arriving
//     within a second: vserve with the cache, without it, and llama.cpp (one context, a sequence per user);
//   2 multi-turn chat      — conversations resending their history each turn: TTFT of later turns;
//   3 memory               — the KV pool's peak during part 1's vserve runs, against the ideal;
//   4 overhead             — distinct prompts (nothing to share), cache on vs off; hashing + lookup ns/token.
// Runs alternate back to back within each repetition (the first one changes every repetition), medians
// and ranges are reported, and each target is the median of per-repetition ratios.
import { join } from 'node:path';
import { createTokenizer, ENGINE_DEFAULTS, GGUFFile, readModelConfig, type EngineOptions } from '../src/index.js';
import { BenchArgs } from './args.js';
import { startContention, waitForQuiet } from './contention.js';
import type { BenchRequest } from './engine-workload.js';
import { machineInfo } from './machine.js';
import { ensureBenchModel } from './models.js';
import { repoRoot } from './paths.js';
import { benchPrefixHashing, type HashingResult } from './prefix-hashing.js';
import { runLlamaCppServing } from './prefix-llama-cpp.js';
import { replayConversations, replayRequests, withEngine, type MemoryPeaks } from './prefix-vserve.js';
import { chatWorkload, distinctPromptWorkload, readLengthTrace, sharedPromptWorkload, type ChatSpec, type Conversation, type SharedPromptSpec } from './prefix-workloads.js';
import { markdownTable, writePartialReport, writeReport } from './report.js';
import { loadLlamaCppModel, NODE_LLAMA_CPP_VERSION } from './single/llama-cpp.js';
import { median, percentile, round } from './stats.js';
import { summarizeClocks, type LatencySummary } from './token-clock.js';

type Workload = 'shared' | 'chat' | 'distinct';
type Peer = 'cache on' | 'cache off' | `llama.cpp b=${number}`;

interface Run {
  workload: Workload;
  peer: Peer;
  rep: number;
  latency: LatencySummary;
  /** Chat: TTFT p50 of turns after the first, and of first turns. */
  laterTurnsTtftP50Ms?: number;
  firstTurnTtftP50Ms?: number;
  promptTokens: number;
  cachedTokens?: number;
  memory?: MemoryPeaks;
  preemptions?: number;
  /** llama.cpp: the context it created. */
  peerContext?: { contextSize: number; batchSize: number; contextRssBytes: number; runRssDeltaBytes: number };
  /** Share of the CPUs other processes used during the run. */
  otherLoad: number;
}

const MiB = 1 << 20;

function range(xs: readonly number[]): { median: number; min: number; max: number } {
  return { median: round(median(xs)), min: round(Math.min(...xs)), max: round(Math.max(...xs)) };
}

const fmt = (xs: readonly number[]) => {
  if (xs.length === 0) return '—';
  const r = range(xs);
  return xs.length === 1 ? `${r.median}` : `${r.median} [${r.min}–${r.max}]`;
};

export async function prefixCommand(argv: readonly string[]): Promise<void> {
  const args = new BenchArgs(argv);
  const machine = machineInfo();
  const parts = new Set(args.list('parts', ['1', '2', '3', '4']).map(Number));
  const reps = Math.max(1, args.int('reps', 3));
  const peerReps = args.flag('no-peer') ? 0 : Math.min(reps, args.int('peer-reps', 1));
  const peerBatches = args.list('peer-batch', ['512']).map(Number);
  const peerThreads = args.int('peer-threads', machine.physicalCores);
  const threads = args.int('threads', machine.physicalCores);
  const quietWaitMs = args.int('quiet-wait', 10) * 1000;
  const seed = args.int('seed', 7);
  const users = args.int('users', 16);
  const shared = { users, systemTokens: args.int('system', 1024), questionTokens: args.int('question', 32), outputTokens: args.int('output', 64), arrivalWindowS: 1, seed };
  const chat = { conversations: args.int('conversations', 8), turns: args.int('turns', 4), budget: args.int('chat-budget', 768), arrivalWindowS: 1, seed };
  const distinctPrompt = args.int('distinct-prompt', 512);
  const engineBase: EngineOptions = {
    threads,
    kvMemory: args.int('kv-memory-mib', 1024) * MiB,
    maxSeqs: users,
    maxContext: args.int('max-context', 2048),
    maxBatchTokens: args.int('max-batch-tokens', ENGINE_DEFAULTS.maxBatchTokens),
  };
  const pageSize = args.int('page-size', 32768); // 0: the engine's default for the pool
  if (pageSize > 0) engineBase.pageSize = pageSize;

  const modelPath = await ensureBenchModel('tinyllama-1.1b', 'q8_0');
  const file = GGUFFile.open(modelPath);
  const config = readModelConfig(file);
  const bos = createTokenizer(file).bos ?? 1;
  file.close();
  const vocab = config.vocabSize;
  const kvBytesPerToken = 2 * config.nLayers * config.nKVHeads * config.headDim * 4; // f32 K and V

  const sharedRequests = sharedPromptWorkload(shared, vocab, bos);
  const distinctRequests = distinctPromptWorkload(users, distinctPrompt, shared.outputTokens, seed, vocab, bos);
  const tracePath = args.string('trace', join(repoRoot, '..', 'shared', 'traces', 'sharegpt_8k_filtered_stats_llama2_tokenizer.csv'));
  const conversations = parts.has(2) ? chatWorkload(chat, readLengthTrace(tracePath), vocab, bos) : [];
  const llamaModel = peerReps > 0 && parts.has(1) ? await loadLlamaCppModel(modelPath) : undefined;

  const runs: Run[] = [];
  const measured = async (label: string, body: () => Promise<Omit<Run, 'otherLoad'>>) => {
    process.stderr.write(`prefix bench ${label}... `);
    await waitForQuiet(quietWaitMs);
    const contention = startContention();
    const run: Run = { ...(await body()), otherLoad: 0 };
    run.otherLoad = round(contention(), 2);
    const l = run.latency;
    process.stderr.write(`${l.outputTokS} out tok/s, TTFT p50 ${l.ttftMs.p50} ms${run.laterTurnsTtftP50Ms !== undefined ? ` (turns 2+: ${run.laterTurnsTtftP50Ms} ms)` : ''}, others ${Math.round(run.otherLoad * 100)}%\n`);
    runs.push(run);
  };
  const vserveRequests = (workload: Workload, requests: readonly BenchRequest[], prefixCache: boolean, rep: number) => async () => {
    const r = await withEngine(modelPath, { ...engineBase, prefixCache }, (e) => replayRequests(e, requests));
    return {
      workload, peer: (prefixCache ? 'cache on' : 'cache off') as Peer, rep,
      latency: summarizeClocks(r.result.map((o) => o.clock)),
      promptTokens: r.result.reduce((n, o) => n + o.promptTokens, 0),
      cachedTokens: r.result.reduce((n, o) => n + o.cachedTokens, 0),
      memory: r.memory, preemptions: r.preemptions,
    };
  };
  const vserveChat = (convs: readonly Conversation[], prefixCache: boolean, rep: number) => async () => {
    const r = await withEngine(modelPath, { ...engineBase, prefixCache }, (e) => replayConversations(e, convs));
    const all = r.result.flat();
    const ttfts = (later: boolean) => r.result.flatMap((turns) => turns.filter((_, i) => (i > 0) === later).map((o) => o.clock.ttftMs!));
    return {
      workload: 'chat' as Workload, peer: (prefixCache ? 'cache on' : 'cache off') as Peer, rep,
      latency: summarizeClocks(all.map((o) => o.clock)),
      laterTurnsTtftP50Ms: round(percentile(ttfts(true), 50)),
      firstTurnTtftP50Ms: round(percentile(ttfts(false), 50)),
      promptTokens: all.reduce((n, o) => n + o.promptTokens, 0),
      cachedTokens: all.reduce((n, o) => n + o.cachedTokens, 0),
      memory: r.memory, preemptions: r.preemptions,
    };
  };
  const llamaCpp = (batchSize: number, rep: number) => async () => {
    const contextSize = Math.max(...sharedRequests.map((r) => r.prompt.length + r.maxTokens));
    const r = await runLlamaCppServing(llamaModel!, sharedRequests, { threads: peerThreads, batchSize, contextSize });
    return {
      workload: 'shared' as Workload, peer: `llama.cpp b=${batchSize}` as Peer, rep,
      latency: summarizeClocks(r.clocks),
      promptTokens: sharedRequests.reduce((n, q) => n + q.prompt.length, 0),
      peerContext: { contextSize: r.contextSize, batchSize: r.batchSize, contextRssBytes: r.contextRssBytes, runRssDeltaBytes: r.runRssDeltaBytes },
    };
  };

  for (let rep = 0; rep < reps; rep++) {
    const plan: [string, () => Promise<Omit<Run, 'otherLoad'>>][] = [];
    if (parts.has(1) || parts.has(3)) {
      for (const on of [true, false]) plan.push([`shared prompt, cache ${on ? 'on' : 'off'}`, vserveRequests('shared', sharedRequests, on, rep)]);
      if (parts.has(1) && rep < peerReps) for (const b of peerBatches) plan.push([`shared prompt, llama.cpp batch ${b}`, llamaCpp(b, rep)]);
    }
    if (parts.has(2)) for (const on of [true, false]) plan.push([`multi-turn chat, cache ${on ? 'on' : 'off'}`, vserveChat(conversations, on, rep)]);
    if (parts.has(4)) for (const on of [true, false]) plan.push([`distinct prompts, cache ${on ? 'on' : 'off'}`, vserveRequests('distinct', distinctRequests, on, rep)]);
    // Pairs stay adjacent; alternate which member of each pair (and which workload) goes first.
    for (const [label, body] of rep % 2 === 0 ? plan : [...plan].reverse()) {
      await measured(`rep ${rep + 1}/${reps}: ${label}`, body);
      writeResults(false); // a partial report after each run, in case the run is cut short
    }
  }
  await llamaModel?.dispose();
  writeResults(true);

  function writeResults(final: boolean): void {
    const hashTokens = args.int('hash-tokens', 100_000);
    const hashing: HashingResult | undefined = final && parts.has(4) ? benchPrefixHashing(hashTokens - (hashTokens % 32), 32, 7) : undefined;

    const idealBytes = (shared.systemTokens + users * (shared.questionTokens + shared.outputTokens)) * kvBytesPerToken;
    const report = {
      benchmark: 'prefix', complete: final, date: new Date().toISOString(), machine, model: { shape: 'tinyllama-1.1b', dtype: 'q8_0', path: modelPath },
      options: { reps, peerReps, peerBatches, peerThreads, threads, engine: engineBase, shared, chat, distinctPrompt, seed, nodeLlamaCpp: NODE_LLAMA_CPP_VERSION },
      conversations: conversations.map((c) => ({ at: round(c.at), turns: c.turns.map((t) => ({ user: t.user.length, maxTokens: t.maxTokens })) })),
      kvBytesPerToken, idealBytes, runs, hashing,
    };
    const md = markdown(runs, { shared, chat, conversations, distinctPrompt, engineBase, reps, peerThreads, kvBytesPerToken, idealBytes, hashing, machine });
    if (final) writeReport('prefix', report, md);
    else writePartialReport('prefix', report, md);
  }
}

interface ReportContext {
  shared: SharedPromptSpec;
  chat: ChatSpec;
  conversations: Conversation[];
  distinctPrompt: number;
  engineBase: EngineOptions;
  reps: number;
  peerThreads: number;
  kvBytesPerToken: number;
  idealBytes: number;
  hashing: HashingResult | undefined;
  machine: ReturnType<typeof machineInfo>;
}

/** Per-repetition ratios f(a) / f(b) of the runs of `workload` by peers a and b in the same repetition. */
function pairedRatios(runs: readonly Run[], workload: Workload, a: Peer, b: Peer, f: (r: Run) => number): number[] {
  return [...new Set(runs.map((r) => r.rep))].flatMap((rep) => {
    const x = runs.find((r) => r.rep === rep && r.workload === workload && r.peer === a);
    const y = runs.find((r) => r.rep === rep && r.workload === workload && r.peer === b);
    return x && y ? [f(x) / f(y)] : [];
  });
}

function markdown(runs: readonly Run[], c: ReportContext): string {
  const of = (w: Workload, p: Peer) => runs.filter((r) => r.workload === w && r.peer === p);
  const peersOf = (w: Workload) => [...new Set(runs.filter((r) => r.workload === w).map((r) => r.peer))];
  const verdict = (xs: number[], ok: (x: number) => boolean) => (xs.length === 0 ? 'not measured' : ok(median(xs)) ? '**met**' : '**not met**');
  const lines: string[] = [
    `# Prefix caching: TinyLlama-1.1B q8_0 (random weights), ${c.machine.physicalCores} cores`,
    '',
    `vserve: Engine, Sarathi, virtual KV, ${c.engineBase.threads} threads, kvMemory ${(c.engineBase.kvMemory ?? 0) / MiB} MiB, ` +
      `page ${c.engineBase.pageSize ?? 'engine default'} B, maxBatchTokens ${c.engineBase.maxBatchTokens}, maxSeqs ${c.engineBase.maxSeqs}, maxContext ${c.engineBase.maxContext}; ` +
      `llama.cpp: node-llama-cpp ${NODE_LLAMA_CPP_VERSION}, CPU, ${c.peerThreads} threads, one context with a sequence per user, no KV sharing between sequences. ` +
      `Greedy decoding, token-id prompts identical for every engine. Cells: median [min–max] over repetitions (${c.reps}); ` +
      'throughput = output tokens / (first arrival to last token); TTFT from each request\'s arrival; TBT = time between tokens.',
    '',
  ];
  const latencyTable = (w: Workload, extra: [string, (r: Run) => number][] = []) => markdownTable(
    ['engine', 'runs', 'out tok/s', 'TTFT p50 ms', 'TTFT p99 ms', 'TBT p50 ms', 'TBT p99 ms', ...extra.map(([h]) => h), 'cached / prompt tokens', 'others'],
    peersOf(w).map((p) => {
      const rs = of(w, p);
      const col = (f: (r: Run) => number) => fmt(rs.map(f));
      const cached = rs[0]!.cachedTokens;
      return [p, rs.length, col((r) => r.latency.outputTokS), col((r) => r.latency.ttftMs.p50), col((r) => r.latency.ttftMs.p99), col((r) => r.latency.tbtMs.p50), col((r) => r.latency.tbtMs.p99),
        ...extra.map(([, f]) => col(f)), cached === undefined ? '—' : `${cached} / ${rs[0]!.promptTokens}`, `${Math.round(Math.max(...rs.map((r) => r.otherLoad)) * 100)}%`];
    }),
  );
  const ratioLine = (label: string, xs: number[], target: string, ok: (x: number) => boolean) =>
    `- ${label} = ${xs.length ? `**${round(median(xs))}** (per repetition: ${xs.map((x) => round(x)).join(', ')})` : '—'}; target ${target}: ${verdict(xs, ok)}.`;

  if (peersOf('shared').length) {
    const s = c.shared;
    lines.push(`## 1. Shared system prompt`, '', `${s.users} users, a ${s.systemTokens}-token system prompt + a distinct ${s.questionTokens}-token question each, ${s.outputTokens} output tokens, arrivals uniform over 1 s (seeded).`, '', latencyTable('shared'), '');
    const llama = peersOf('shared').filter((p) => p.startsWith('llama.cpp'));
    const bestLlama = llama.sort((a, b) => median(of('shared', b).map((r) => r.latency.outputTokS)) - median(of('shared', a).map((r) => r.latency.outputTokS)))[0];
    lines.push(
      ratioLine('TTFT p50 cache on / off', pairedRatios(runs, 'shared', 'cache on', 'cache off', (r) => r.latency.ttftMs.p50), '<= 0.125', (x) => x <= 0.125),
      ratioLine('throughput cache on / off', pairedRatios(runs, 'shared', 'cache on', 'cache off', (r) => r.latency.outputTokS), '>= 3', (x) => x >= 3),
    );
    if (bestLlama) lines.push(ratioLine(`throughput cache on / ${bestLlama} (its best configuration here)`, pairedRatios(runs, 'shared', 'cache on', bestLlama, (r) => r.latency.outputTokS), '>= 10', (x) => x >= 10));
    lines.push('');
  }
  if (peersOf('chat').length) {
    const ch = c.chat;
    const turns = c.conversations.flatMap((v) => v.turns);
    lines.push(`## 2. Multi-turn chat`, '',
      `${ch.conversations} conversations x ${ch.turns} turns, run concurrently (first turns uniform over 1 s); each turn's prompt = the previous prompt + its reply + the new user tokens. ` +
      `Per turn, (user, reply) lengths = (num_prefill_tokens, num_decode_tokens) of a random ShareGPT trace row, each conversation's scaled by one factor so that all its tokens fit ${ch.budget} ` +
      `(user turns ${Math.min(...turns.map((t) => t.user.length))}–${Math.max(...turns.map((t) => t.user.length))} tokens, replies ${Math.min(...turns.map((t) => t.maxTokens))}–${Math.max(...turns.map((t) => t.maxTokens))}).`,
      '', latencyTable('chat', [['TTFT p50 turn 1', (r) => r.firstTurnTtftP50Ms!], ['TTFT p50 turns 2+', (r) => r.laterTurnsTtftP50Ms!]]), '',
      ratioLine('TTFT p50 of turns 2+, cache on / off', pairedRatios(runs, 'chat', 'cache on', 'cache off', (r) => r.laterTurnsTtftP50Ms!), '<= 0.25', (x) => x <= 0.25), '');
  }
  const memRuns = ['cache on', 'cache off'].flatMap((p) => of('shared', p as Peer).filter((r) => r.memory));
  if (memRuns.length) {
    const mib = (b: number) => b / MiB;
    const pageBytes = memRuns[0]!.memory!.pageBytes;
    lines.push(`## 3. KV memory during workload 1`, '',
      `Ideal = (${c.shared.systemTokens} + ${c.shared.users} x (${c.shared.questionTokens} + ${c.shared.outputTokens})) tokens x ${c.kvBytesPerToken} B/token (f32 K and V, 22 layers x 4 KV heads x 64) = ${round(mib(c.idealBytes))} MiB. ` +
      `Page size the engine used: ${pageBytes} B (${pageBytes / 1024} tokens per page and (layer, K/V)). Peaks sampled from engine.stats() every 50 ms; RSS / PSS delta = peak of the process's - its value after loading and warm-up ` +
      '(Linux counts a page in RSS once per mapping, so a prefix page mapped into 16 slots counts 16 times there; PSS counts it once).', '',
      markdownTable(['engine', 'KV (used - idle pages) MiB', 'x ideal', 'running pages MiB', 'pool resident MiB', 'RSS delta MiB', 'PSS delta MiB'],
        ['cache on', 'cache off'].filter((p) => of('shared', p as Peer).length).map((p) => {
          const rs = of('shared', p as Peer);
          return [p, fmt(rs.map((r) => mib(r.memory!.kvBytes))), fmt(rs.map((r) => r.memory!.kvBytes / c.idealBytes)), fmt(rs.map((r) => mib(r.memory!.runningBytes))),
            fmt(rs.map((r) => mib(r.memory!.residentBytes))), fmt(rs.map((r) => mib(r.memory!.rssDeltaBytes))), fmt(rs.map((r) => mib(r.memory!.pssDeltaBytes)))];
        })), '',
      ratioLine('KV bytes with the cache / ideal', of('shared', 'cache on').map((r) => r.memory!.kvBytes / c.idealBytes), '<= 1.15', (x) => x <= 1.15));
    const llamaCtx = runs.find((r) => r.peerContext)?.peerContext;
    if (llamaCtx) lines.push(`- llama.cpp (f16 KV, ${llamaCtx.contextSize} cells per sequence): context creation added ${round(mib(llamaCtx.contextRssBytes))} MiB RSS, the run ${round(mib(llamaCtx.runRssDeltaBytes))} MiB more.`);
    lines.push('');
  }
  if (peersOf('distinct').length) {
    lines.push(`## 4. Overhead: no shared prefix`, '', `${c.shared.users} users, distinct ${c.distinctPrompt}-token prompts (BOS + random ids), ${c.shared.outputTokens} output tokens, all at t = 0.`, '', latencyTable('distinct'), '',
      ratioLine('throughput lost to the cache, 1 - on / off', pairedRatios(runs, 'distinct', 'cache on', 'cache off', (r) => r.latency.outputTokS).map((x) => 1 - x), '<= 0.02', (x) => x <= 0.02));
    const h = c.hashing;
    if (h) lines.push(`- PrefixIndex over ${h.tokens} tokens (${h.blockTokens}-token blocks, median of ${h.repeats}): extendChain ${h.extendChainNsPerToken} ns/token, match ${h.matchHitNsPerToken} ns/token all hits, ${h.matchMissNsPerToken} ns/token first-block miss.`);
    lines.push('');
  }
  return lines.join('\n');
}
