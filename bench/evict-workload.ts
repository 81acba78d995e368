// `npm run bench -- evict --parts workload`: what eviction buys a server with long prompts. Requests
// drawn from the arxiv-summarization trace (long prompts, short summaries), scaled so that its longest
// request is 4K tokens, all arrive at once at one Engine with a fixed KV pool; the same requests run
// with the full cache and with prompt-time policies at a budget. The scheduler is prefill-first (vLLM's),
// so that the sequences memory admits decode together. Reported per run: the sequences running at once
// (peak, and the mean over decode-only steps), generation throughput (tokens of decode-only steps over
// their time), output and total throughput over the whole run, and the KV pages in use.
import { readFileSync } from 'node:fs';
import { Engine, GGUFFile, readModelConfig } from '../src/index.js';
import { Rng } from '../src/engine/rng.js';
import { bytesPerToken, resolveShape } from '../src/kv/shape.js';
import { randomTokens } from './engine-workload.js';
import { round } from './stats.js';

export interface WorkloadRequest {
  prompt: number[];
  maxTokens: number;
}

/** `count` requests from the trace, scaled so that its longest request is `maxTokens` tokens; prompts are random ids after BOS. */
export function traceRequests(csvPath: string, count: number, maxTokens: number, vocabSize: number, bos: number, seed: number): WorkloadRequest[] {
  const [header, ...lines] = readFileSync(csvPath, 'utf8').trim().split('\n');
  const cols = header!.split(',');
  const p = cols.indexOf('num_prefill_tokens'), d = cols.indexOf('num_decode_tokens'), t = cols.indexOf('num_total_tokens');
  const rows = lines.map((l) => l.split(',').map(Number));
  const scale = maxTokens / Math.max(...rows.map((r) => r[t]!));
  const rng = new Rng(seed);
  return Array.from({ length: count }, () => {
    const r = rows[Math.floor(rng.next() * rows.length)]!;
    const promptLen = Math.max(16, Math.round(r[p]! * scale));
    return { prompt: [bos, ...randomTokens(rng, promptLen - 1, vocabSize)], maxTokens: Math.max(8, Math.round(r[d]! * scale)) };
  });
}

export interface WorkloadRun {
  label: string;
  policy: string;
  budget: number | null;
  wallS: number;
  outputTokens: number;
  promptTokens: number;
  outputTokS: number;
  totalTokS: number;
  peakRunning: number;
  /** Mean running sequences over the samples taken while at least one sequence was decoding. */
  meanRunningDecoding: number;
  /** Tokens per second of the steps that only decoded. */
  decodeTokS: number;
  peakUsedPages: number;
  totalPages: number;
  evictedTokens: number;
  preemptions: number;
}

export interface WorkloadSpec {
  modelPath: string;
  requests: WorkloadRequest[];
  maxContext: number;
  /** KV pool, in tokens of full context (f16). */
  poolTokens: number;
  maxSeqs: number;
  threads: number;
  /** Kept from being sampled, so every request runs to its max_tokens. */
  eos: number | undefined;
}

export async function runWorkload(spec: WorkloadSpec, label: string, policy: string, budget: number | undefined): Promise<WorkloadRun> {
  const file = GGUFFile.open(spec.modelPath);
  const c = readModelConfig(file);
  file.close();
  const perToken = bytesPerToken(resolveShape({ layers: c.nLayers, kvHeads: c.nKVHeads, headDim: c.headDim, maxSlots: 1, maxContext: spec.maxContext }));
  const engine = await Engine.load(spec.modelPath, {
    threads: spec.threads,
    maxSeqs: spec.maxSeqs,
    maxContext: spec.maxContext,
    kvMemory: spec.poolTokens * perToken,
    prefixCache: false,
    scheduler: 'vllm',
  });
  try {
    const eos = spec.eos;
    const logitBias = eos === undefined ? undefined : { [eos]: -100 };
    let peakRunning = 0, peakUsedPages = 0, totalPages = 0;
    let sampling = true;
    const sampler = (async () => {
      while (sampling) {
        const s = await engine.stats();
        peakRunning = Math.max(peakRunning, s.running);
        peakUsedPages = Math.max(peakUsedPages, s.kv.usedPages - s.kv.idlePages);
        totalPages = s.kv.totalPages;
        await new Promise((r) => setTimeout(r, 100));
      }
    })();
    const t0 = performance.now();
    let outputTokens = 0, evictedTokens = 0;
    await Promise.all(spec.requests.map(async (r) => {
      for await (const d of engine.generate(r.prompt, { temperature: 0, maxTokens: r.maxTokens, ...(logitBias ? { logitBias } : {}), ...(policy === 'none' ? {} : { kvPolicy: policy, kvBudget: budget }) })) {
        outputTokens += d.tokens.length;
        evictedTokens += d.usage?.kv_eviction?.evicted_tokens ?? 0;
      }
    }));
    const wallS = (performance.now() - t0) / 1000;
    sampling = false;
    await sampler;
    const stats = await engine.stats();
    const promptTokens = spec.requests.reduce((n, r) => n + r.prompt.length, 0);
    return {
      label, policy, budget: budget ?? null, wallS: round(wallS, 2), outputTokens, promptTokens,
      outputTokS: round(outputTokens / wallS, 2), totalTokS: round((outputTokens + promptTokens) / wallS, 1),
      peakRunning,
      meanRunningDecoding: round(stats.step.decodeOnlyTokens / Math.max(1, stats.step.decodeOnlySteps), 2),
      decodeTokS: round((stats.step.decodeOnlyTokens / Math.max(1e-9, stats.step.decodeOnlyMs)) * 1000, 2),
      peakUsedPages, totalPages, evictedTokens, preemptions: stats.step.preemptions,
    };
  } finally {
    await engine.close();
  }
}
