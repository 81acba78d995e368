// `npm run bench -- evict`: KV eviction measured (issue: eviction and bounded-memory generation).
//   --parts quality     KL / top-1 / perplexity ratio of each policy at each budget against the full
//                       cache, on the model's own texts (evict-quality.ts; default model: the bundled one)
//   --parts workload    TinyLlama-1.1B Q8_0 (8K context) on long prompts from the arxiv trace: concurrent sequences and
//                       throughput, full cache against snapkv and chunkkv at a budget (evict-workload.ts)
//   --parts scores      score collection as a share of decode attention time (evict-score-cost.ts)
//   --parts compaction  time per compact() call and the pool pages it frees (evict-compaction-cost.ts)
// Reports, never asserts. Run nothing else meanwhile: the machine has two cores.
import { join } from 'node:path';
import { loadNativeAddon } from '../src/backend/native/addon.js';
import { EVICTION_POLICIES, EVICTION_POLICY_NAMES, type EvictionPolicyName } from '../src/kv/eviction/index.js';
import { createTokenizer, GGUFFile, readModelConfig } from '../src/index.js';
import { BenchArgs } from './args.js';
import { measureCompactionCost } from './evict-compaction-cost.js';
import { measureEvictionQuality, type EvictionQualityResult } from './evict-quality.js';
import { measureScoreCost } from './evict-score-cost.js';
import { runWorkload, traceRequests, type WorkloadRun } from './evict-workload.js';
import { machineInfo } from './machine.js';
import { ensureBenchModel } from './models.js';
import { repoRoot } from './paths.js';
import { markdownTable, writeReport } from './report.js';
import { median, round } from './stats.js';

const ARXIV = join(repoRoot, '..', 'shared', 'traces', 'arxiv_summarization_sample.csv');

function qualityMarkdown(r: EvictionQualityResult): string[] {
  const fmt = (x: number) => (x < 1e-3 ? x.toExponential(2) : round(x, 4).toString());
  return [
    `## Quality (${r.model.split('/').at(-1)}): ${r.texts} texts, prompt ${r.promptTokens} + question ${r.questionTokens} + continuation ${r.continuationTokens}; ${r.scoredPositions} scored positions`,
    '',
    `A budget of x% keeps x% of the prompt; every configuration of it holds that plus the ${r.questionTokens} question tokens when the continuation starts (decode-time policies and the question-window variants are given the question's rows in their budget).`,
    '',
    markdownTable(
      ['configuration', 'policy budget (tokens)', 'mean KL', 'p99 KL', 'top-1', 'ppl ratio'],
      r.rows.map((x) => [x.name, x.budgetTokens ?? '-', fmt(x.summary.meanKL), fmt(x.summary.p99KL), `${(x.summary.top1Agreement * 100).toFixed(1)}%`, round(x.summary.pplRatio, 4)]),
    ),
    '',
  ];
}

/** The targets: learned policies below sinks' mean KL at budgets <= 50% (at the same memory), and the best top-1 at 50%. */
function qualityVerdict(r: EvictionQualityResult): string[] {
  const rows = r.rows.filter((x) => x.kv === 'f32' && x.budget !== null);
  const find = (policy: string, setting: string, budget: number) => rows.find((x) => x.policy === policy && x.setting === setting && x.budget === budget);
  const budgets = [...new Set(rows.map((x) => x.budget!))].filter((b) => b <= 0.5).sort((a, b) => a - b);
  const lines = ['### Against sinks at the same memory (mean KL, f32 cache)', ''];
  const table = EVICTION_POLICY_NAMES.filter((p) => p !== 'sinks').map((policy) => {
    const decodeTime = EVICTION_POLICIES[policy].when === 'decode';
    return [policy, ...budgets.map((b) => {
      const mine = find(policy, 'agnostic', b), base = find('sinks', decodeTime ? 'agnostic' : 'once', b);
      if (!mine || !base) return '-';
      const ratio = mine.summary.meanKL / base.summary.meanKL;
      return `${round(ratio, 3)}x ${ratio < 1 ? 'lower' : 'HIGHER'}`;
    })];
  });
  lines.push(markdownTable(['policy (vs sinks)', ...budgets.map((b) => `${b * 100}%`)], table), '');
  const at50 = rows.filter((x) => x.budget === 0.5 && x.setting === 'agnostic').sort((a, b) => b.summary.top1Agreement - a.summary.top1Agreement)[0];
  if (at50) lines.push(`Best top-1 agreement at a 50% budget: ${at50.name}, ${(at50.summary.top1Agreement * 100).toFixed(2)}%.`, '');
  return lines;
}

function workloadMarkdown(runs: WorkloadRun[]): string[] {
  const full = runs.filter((r) => r.policy === 'none');
  const base = (key: 'peakRunning' | 'meanRunningDecoding' | 'decodeTokS' | 'outputTokS' | 'totalTokS') => median(full.map((r) => r[key]));
  return [
    '## Long-prompt workload (arxiv trace scaled to 4K)',
    '',
    markdownTable(
      ['run', 'wall s', 'peak running', 'mean running (decode steps)', 'decode tok/s', 'output tok/s', 'total tok/s', 'peak pages', 'evicted', 'preemptions', 'x full: peak / mean running, decode / output / total tok/s'],
      runs.map((r) => [r.label, r.wallS, r.peakRunning, r.meanRunningDecoding, r.decodeTokS, r.outputTokS, r.totalTokS, `${r.peakUsedPages}/${r.totalPages}`, r.evictedTokens, r.preemptions,
        [r.peakRunning / base('peakRunning'), r.meanRunningDecoding / base('meanRunningDecoding'), r.decodeTokS / base('decodeTokS'), r.outputTokS / base('outputTokS'), r.totalTokS / base('totalTokS')].map((x) => round(x, 2)).join(' / ')]),
    ),
    '',
  ];
}

export async function evictCommand(argv: readonly string[]): Promise<void> {
  const args = new BenchArgs(argv);
  const parts = args.list('parts', ['quality', 'scores', 'compaction', 'workload']);
  const log = (line: string) => process.stderr.write(`${line}\n`);
  const data: Record<string, unknown> = { machine: machineInfo() };
  const md: string[] = ['# KV eviction', ''];

  if (parts.includes('quality')) {
    const model = args.string('model', join(repoRoot, 'models', 'stories260K.gguf'));
    const policies = args.list('policies', EVICTION_POLICY_NAMES) as EvictionPolicyName[];
    const r = await measureEvictionQuality({
      model, policies,
      texts: args.int('texts', 8),
      promptTokens: args.int('prompt', 384),
      questionTokens: args.int('question', 32),
      continuationTokens: args.int('continuation', 96),
      budgets: args.list('budgets', ['0.125', '0.25', '0.5', '0.75']).map(Number),
      q8: !args.flag('no-q8'),
      seed: args.int('seed', 1),
      temperature: Number(args.string('temperature', '0.8')),
      prefillChunk: args.int('prefill-chunk', 512),
      log,
    });
    data.quality = r;
    md.push(...qualityMarkdown(r), ...qualityVerdict(r));
  }

  if (parts.includes('scores')) {
    const seqs = args.int('score-seqs', 16), context = args.int('score-context', 1024);
    const r = await measureScoreCost({ seqs, context, repeats: args.int('score-repeats', 15) });
    data.scores = { seqs, context, ...r };
    md.push('## Score collection', '', `Decode attention of ${seqs} sequences x ${context} rows (TinyLlama's heads, f16): every token voting costs ${round(r.shareMedian * 100, 2)}% of attention time (median of ${r.attentionMs.length} alternating pairs; attention ${round(median(r.attentionMs), 3)} ms, with scores ${round(median(r.withScoresMs), 3)} ms).`, '');
  }

  if (parts.includes('compaction')) {
    const rows = [];
    for (const manager of ['virtual', 'paged'] as const) {
      for (const [tokens, kept] of [[4096, 1024], [2048, 512], [4096, 4032]] as const) {
        const r = measureCompactionCost({ manager, tokens, kept, repeats: args.int('compact-repeats', 9) });
        rows.push({ manager, tokens, kept, ...r });
      }
    }
    data.compaction = rows;
    md.push('## Compaction', '', markdownTable(
      ['manager', 'tokens -> kept', 'median ms (min-max)', 'free pages before -> after', 'freed in the call'],
      rows.map((r) => [r.manager, `${r.tokens} -> ${r.kept}`, `${round(r.medianMs, 3)} (${round(r.minMs, 3)}-${round(r.maxMs, 3)})`, `${r.freeBefore} -> ${r.freeAfter}`, r.freedPages]),
    ), '', 'The static manager moves rows the same way and frees nothing: its slots are backed for the whole context.', '');
  }

  if (parts.includes('workload')) {
    const modelPath = args.string('workload-model', '') || (await ensureBenchModel('tinyllama-1.1b-8k', 'q8_0'));
    const file = GGUFFile.open(modelPath);
    const c = readModelConfig(file);
    const tokenizer = createTokenizer(file);
    file.close();
    const maxContext = args.int('max-context', 4096);
    const requests = traceRequests(ARXIV, args.int('requests', 32), maxContext, c.vocabSize, tokenizer.bos ?? 1, args.int('seed', 1));
    const spec = { eos: tokenizer.eos, modelPath, requests, maxContext, poolTokens: args.int('pool-tokens', 2 * maxContext), maxSeqs: args.int('max-seqs', 64), threads: args.int('threads', 0) || loadNativeAddon().getThreads() };
    const budget = Number(args.string('budget', '0.25'));
    const policies = args.list('workload-policies', ['snapkv', 'chunkkv']);
    const runs: WorkloadRun[] = [];
    for (let rep = 0; rep < args.int('reps', 1); rep++) {
      for (const policy of ['none', ...policies]) {
        log(`workload rep ${rep + 1}: ${policy}`);
        runs.push(await runWorkload(spec, `${policy === 'none' ? 'full cache' : `${policy} ${budget}`} #${rep + 1}`, policy, policy === 'none' ? undefined : budget));
      }
    }
    data.workload = { requests: requests.map((r) => ({ prompt: r.prompt.length, maxTokens: r.maxTokens })), poolTokens: spec.poolTokens, maxContext, runs };
    md.push(...workloadMarkdown(runs));
  }
  writeReport('evict', data, md.join('\n'));
}
