// End-to-end decode at long context per KV type (`npm run bench -- kv --parts e2e`): the same prompts
// (random token ids after BOS, one seeded batch) on vserve and on llama.cpp with the same cache types, the
// same model file and the same thread count, in the same run. Only the steps in which every sequence
// decodes are timed (decode-window.ts). Within each repetition the two engines of a type run back to
// back (which goes first alternates), and types rotate; ratios are taken within a repetition.
import type { LlamaModel } from 'node-llama-cpp';
import { Rng } from '../src/engine/rng.js';
import { createTokenizer, GGUFFile, readModelConfig } from '../src/index.js';
import type { KVType } from '../src/kv/format.js';
import { startContention, waitForQuiet } from './contention.js';
import { decodeWindow, type DecodeWindow } from './decode-window.js';
import { randomTokens } from './engine-workload.js';
import { llamaCppDecodeRun } from './kv-e2e-llama-cpp.js';
import { contextFor, type DecodeRunSpec, type DecodeRunTimes } from './kv-e2e-run.js';
import { vserveDecodeRun } from './kv-e2e-vserve.js';
import { markdownTable } from './report.js';
import { loadLlamaCppModel, NODE_LLAMA_CPP_VERSION } from './single/llama-cpp.js';
import { median, medianRange, round } from './stats.js';

export interface E2EOptions {
  modelPath: string;
  variants: { label: string; type: KVType }[];
  sequences: number;
  /** Prompt lengths are uniform over [min, max] tokens. */
  promptTokens: [min: number, max: number];
  decodeTokens: number;
  threads: number;
  reps: number;
  /** Run llama.cpp too (node-llama-cpp must be installed: npm run bench:setup). */
  peer: boolean;
  peerBatchSize: number;
  peerFlashAttention: boolean | 'auto';
  /** See LlamaCppDecodeOptions.dispatchWaitMs. */
  peerDispatchWaitMs: number;
  /** Before each run, wait up to this long for other processes to go quiet. */
  quietWaitMs: number;
  seed: number;
}

export type E2EEngine = 'vserve' | 'llama.cpp';

export interface E2ERun {
  engine: E2EEngine;
  kvType: string;
  rep: number;
  window?: DecodeWindow;
  /** Why the run gave no figure (an engine refusing a cache type, say). */
  error?: string;
  details?: DecodeRunTimes['details'];
  /** Share of the CPUs other processes used during the run. */
  otherLoad: number;
}

export interface E2EResult {
  promptLengths: number[];
  contextPerSequence: number;
  peer: { ran: boolean; nodeLlamaCpp?: string; llamaCppRelease?: string; reason?: string };
  runs: E2ERun[];
}

/** `n` prompts of BOS + random ids, lengths uniform over [min, max], from one seed. */
export function decodePrompts(n: number, [min, max]: [number, number], seed: number, vocabSize: number, bos: number): number[][] {
  const rng = new Rng(seed);
  return Array.from({ length: n }, () => {
    const length = min + Math.floor(rng.next() * (max - min + 1));
    return [bos, ...randomTokens(rng, length - 1, vocabSize)];
  });
}

async function loadPeer(modelPath: string): Promise<{ model?: LlamaModel; info: E2EResult['peer'] }> {
  try {
    const model = await loadLlamaCppModel(modelPath);
    return { model, info: { ran: true, nodeLlamaCpp: NODE_LLAMA_CPP_VERSION, llamaCppRelease: model.llama.llamaCppRelease.release } };
  } catch (e) {
    return { info: { ran: false, reason: `node-llama-cpp could not load the model (${e instanceof Error ? e.message : String(e)}); npm run bench:setup installs it` } };
  }
}

/** Runs every (type, engine) `reps` times; `onRun` sees the result so far after each run. */
export async function benchDecodeE2E(opts: E2EOptions, onRun?: (r: E2EResult) => void): Promise<E2EResult> {
  const file = GGUFFile.open(opts.modelPath);
  const config = readModelConfig(file);
  const tokenizer = createTokenizer(file);
  file.close();
  const prompts = decodePrompts(opts.sequences, opts.promptTokens, opts.seed, config.vocabSize, tokenizer.bos ?? 1);
  const specOf = (type: KVType): DecodeRunSpec => ({ prompts, decodeTokens: opts.decodeTokens, type, threads: opts.threads });
  const peer = opts.peer ? await loadPeer(opts.modelPath) : { info: { ran: false, reason: 'not asked for (--no-peer)' } };
  const result: E2EResult = { promptLengths: prompts.map((p) => p.length), contextPerSequence: contextFor(specOf(opts.variants[0]!.type)), peer: peer.info, runs: [] };

  const runOne = async (engine: E2EEngine, v: E2EOptions['variants'][number], rep: number) => {
    process.stderr.write(`kv e2e rep ${rep + 1}/${opts.reps}: ${engine}, ${v.label}... `);
    await waitForQuiet(opts.quietWaitMs);
    const contention = startContention();
    const run: E2ERun = { engine, kvType: v.label, rep, otherLoad: 0 };
    try {
      const times = engine === 'vserve'
        ? await vserveDecodeRun(opts.modelPath, specOf(v.type), tokenizer.eos)
        : await llamaCppDecodeRun(peer.model!, specOf(v.type), { batchSize: opts.peerBatchSize, flashAttention: opts.peerFlashAttention, dispatchWaitMs: opts.peerDispatchWaitMs });
      run.window = decodeWindow(times.times, times.startMs);
      run.details = times.details;
    } catch (e) {
      run.error = e instanceof Error ? e.message : String(e);
    }
    run.otherLoad = round(contention(), 2);
    process.stderr.write(run.window ? `${run.window.tokS} tok/s decode, step ${run.window.stepMs} ms, prompts ${run.window.prefillS} s\n` : `failed: ${run.error}\n`);
    result.runs.push(run);
    onRun?.(result);
  };

  try {
    for (let rep = 0; rep < opts.reps; rep++) {
      const order = opts.variants.map((_, i) => opts.variants[(i + rep) % opts.variants.length]!);
      for (const v of order) {
        const engines: E2EEngine[] = peer.model ? ['vserve', 'llama.cpp'] : ['vserve'];
        for (const engine of rep % 2 === 0 ? engines : engines.reverse()) await runOne(engine, v, rep);
      }
    }
  } finally {
    await peer.model?.dispose();
  }
  return result;
}

/** vserve / llama.cpp decode tok/s of one type, per repetition where both ran. */
function pairedRatios(runs: readonly E2ERun[], kvType: string): number[] {
  return [...new Set(runs.map((r) => r.rep))].flatMap((rep) => {
    const of = (engine: E2EEngine) => runs.find((r) => r.rep === rep && r.kvType === kvType && r.engine === engine)?.window;
    const a = of('vserve'), b = of('llama.cpp');
    return a && b ? [a.tokS / b.tokS] : [];
  });
}

/** Target: with a q8_0 cache, vserve's long-context decode at least llama.cpp's with q8_0/q8_0. */
const TARGET = { kvType: 'q8_0', ratio: 1.0 };

export function e2eMarkdown(r: E2EResult, opts: E2EOptions): string[] {
  const types = opts.variants.map((v) => v.label);
  const cell = (engine: E2EEngine, kvType: string, f: (w: DecodeWindow) => number) =>
    medianRange(r.runs.filter((x) => x.engine === engine && x.kvType === kvType && x.window).map((x) => f(x.window!)));
  const ratioCell = (kvType: string) => {
    const xs = pairedRatios(r.runs, kvType);
    return xs.length ? `**${round(median(xs))}**${xs.length > 1 ? ` (${xs.map((x) => round(x)).join(', ')})` : ''}` : '—';
  };
  const load = (kvType: string, engine: E2EEngine) =>
    `${Math.round(Math.max(0, ...r.runs.filter((x) => x.kvType === kvType && x.engine === engine).map((x) => x.otherLoad || 0)) * 100)}%`;
  const engines: E2EEngine[] = r.peer.ran ? ['vserve', 'llama.cpp'] : ['vserve'];
  const lengths = r.promptLengths;
  const target = pairedRatios(r.runs, TARGET.kvType);
  const lines = [
    `## End-to-end decode at long context (${opts.sequences} sequences, prompts ${Math.min(...lengths)}–${Math.max(...lengths)} tokens, ${opts.threads} threads)`,
    '',
    `Model: ${opts.modelPath.split('/').at(-1)}. Prompts: BOS + random ids (seed ${opts.seed}), mean ${round(lengths.reduce((a, b) => a + b, 0) / lengths.length)} tokens, ` +
      `computed first; then ${opts.decodeTokens} greedy tokens per sequence. Decode tok/s counts only the steps in which all ${opts.sequences} sequences decode ` +
      '(from the last sequence\'s first token to the first sequence\'s last); step = median time between two tokens of a sequence there; ' +
      `tokens per burst = tokens arriving together there (${opts.sequences} when every step carries every sequence); prompts = time until every sequence had its first token; others = share of the CPUs other processes used (highest run). ` +
      'End-of-generation does not stop a sequence (vserve: EOS gets logit bias -100; llama.cpp: yieldEogToken). ' +
      `vserve: Engine, virtual KV, prefill-first scheduler (every prompt computed before decoding starts), kvType per row. ` +
      (r.peer.ran
        ? `llama.cpp: node-llama-cpp ${r.peer.nodeLlamaCpp} (llama.cpp ${r.peer.llamaCppRelease}), CPU, one context with a sequence per prompt, ${r.contextPerSequence} cells each (rounded up to 256), ` +
          `experimentalKvCacheKeyType / ValueType per row, flash attention ${opts.peerFlashAttention}, prompts evaluated in batches of ${opts.peerBatchSize}, ` +
          (opts.peerDispatchWaitMs > 0 ? `each decode waits (up to ${opts.peerDispatchWaitMs} ms) until every sequence has queued its token (node-llama-cpp's default, the next event-loop turn, lets sequences whose sampling ends late miss the step). ` : 'node-llama-cpp\'s default dispatch (the next event-loop turn). ')
        : `llama.cpp: not run (${r.peer.reason}). `) +
      `Cells: median [min–max] over ${opts.reps} repetition${opts.reps === 1 ? '' : 's'}; ratio = vserve / llama.cpp decode tok/s within each repetition (median, then each).`,
    '',
    markdownTable(['KV type', 'vserve decode tok/s', 'llama.cpp decode tok/s', 'vserve / llama.cpp'],
      types.map((t) => [t, cell('vserve', t, (w) => w.tokS), cell('llama.cpp', t, (w) => w.tokS), ratioCell(t)])),
    '',
    markdownTable(['KV type', 'engine', 'step ms', 'tokens per burst', 'prompts s', 'others'],
      types.flatMap((t) => engines.map((e) => [t, e, cell(e, t, (w) => w.stepMs), cell(e, t, (w) => w.meanBurst), cell(e, t, (w) => w.prefillS), load(t, e)]))),
    '',
    `- vserve ${TARGET.kvType} / llama.cpp ${TARGET.kvType}/${TARGET.kvType} = ${target.length ? `**${round(median(target))}**` : '—'}; target >= ${TARGET.ratio}: ` +
      `${target.length === 0 ? 'not measured' : median(target) >= TARGET.ratio ? '**met**' : '**not met**'}.`,
  ];
  for (const x of r.runs.filter((x) => x.error)) lines.push(`- ${x.engine} ${x.kvType} (repetition ${x.rep + 1}) failed: ${x.error}`);
  return lines;
}
