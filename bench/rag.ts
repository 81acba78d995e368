// `npm run bench -- rag`: reuse of RAG document chunks (CacheBlend; issue: RAG chunk-cache reuse).
//   --parts quality  KL / top-1 of the answer against the full prompt at each recompute share, the model's
//                    own stories as documents (rag-quality.ts; default model: the bundled one)
//   --parts speed    TinyLlama-1.1B Q8_0 shapes (8K context, random weights): 6 chunks of 512 tokens from a
//                    pool of 40 per request under Poisson arrivals; TTFT and throughput of full prefill,
//                    prefix caching and blending at each share (rag-speed.ts)
// Reports, never asserts. Run nothing else meanwhile: the machine has two cores.
import { join } from 'node:path';
import { BenchArgs } from './args.js';
import { machineInfo } from './machine.js';
import { ensureBenchModel } from './models.js';
import { repoRoot } from './paths.js';
import { measureRagQuality, type RagQualityResult } from './rag-quality.js';
import { measureRagSpeed, summarizeRagSpeed, type RagSpeedResult } from './rag-speed.js';
import { markdownTable, writeReport } from './report.js';
import { round } from './stats.js';

function qualityMarkdown(r: RagQualityResult): string[] {
  const fmt = (x: number) => (x < 1e-3 ? x.toExponential(2) : round(x, 4).toString());
  const zero = r.rows.find((x) => x.recompute === 0 && x.context === 'prefix');
  const at15 = r.rows.find((x) => x.recompute === 0.15 && x.context === 'prefix');
  const full = r.rows.find((x) => x.recompute === 1);
  const lines = [
    `## Quality (${r.model.split('/').at(-1)}): ${r.texts} requests of ${r.documentsPerRequest} stories x ${r.storyTokens} tokens (prompts of ${Math.min(...r.promptTokens)}-${Math.max(...r.promptTokens)} tokens), ${r.answerTokens} answer tokens scored each`,
    '',
    markdownTable(
      ['configuration', 'mean KL', 'p99 KL', 'top-1', 'ppl ratio', 'greedy answer = full prompt\'s'],
      r.rows.map((x) => [x.name, fmt(x.summary.meanKL), fmt(x.summary.p99KL), `${(x.summary.top1Agreement * 100).toFixed(1)}%`, round(x.summary.pplRatio, 4), `${x.exactAnswers}/${r.texts}`]),
    ),
    '',
  ];
  if (zero && at15) {
    const ratio = at15.summary.meanKL / zero.summary.meanKL;
    lines.push(`Target KL(r=15%) <= 1/3 KL(r=0%): ${fmt(at15.summary.meanKL)} / ${fmt(zero.summary.meanKL)} = ${round(ratio, 3)} (${ratio <= 1 / 3 ? 'met' : 'NOT met'}).`);
  }
  if (full) lines.push(`Target: at r=100% the greedy answer equals the full prompt's: ${full.exactAnswers}/${r.texts} (${full.exactAnswers === r.texts ? 'met' : 'NOT met'}).`);
  lines.push('');
  return lines;
}

function speedMarkdown(r: RagSpeedResult): string[] {
  const o = r.options;
  const rows = summarizeRagSpeed(r.runs);
  const at15 = rows.find((x) => x.config === 'blend r=15%');
  const lines = [
    `## Speed (${r.model.split('/').at(-1)}): ${o.chunks} chunks x ${o.chunkTokens} tokens from a pool of ${o.pool} + ${o.systemTokens}-token system prompt + ${o.questionTokens}-token question (${r.promptTokens} prompt tokens), ${o.outputTokens} output tokens; ${o.requests} requests per configuration at ${o.rate}/s (Poisson), ${o.rounds} round(s), medians over rounds`,
    '',
    markdownTable(
      ['configuration', 'TTFT alone ms', 'alone vs full / vs prefix caching', 'Poisson TTFT p50 ms (range)', 'mean TTFT ms', 'req/s', 'TTFT p50 vs full / vs prefix caching', 'throughput vs full'],
      rows.map((x) => [x.config, round(x.aloneTtftMs, 0), `${round(x.aloneVsFull, 3)} / ${round(x.aloneVsPrefix, 3)}`, `${round(x.ttftP50Ms, 0)} (${round(x.ttftRange[0], 0)}-${round(x.ttftRange[1], 0)})`, round(x.meanTtftMs, 0), round(x.requestsPerS, 4), `${round(x.ttftVsFull, 3)} / ${round(x.ttftVsPrefix, 3)}`, round(x.throughputVsFull, 2)]),
    ),
    '',
  ];
  if (at15) {
    const verdict = (x: number, limit: number) => `${round(x, 3)} (${x <= limit ? 'met' : 'NOT met'})`;
    lines.push(
      `Targets at r=15%, under Poisson arrivals: TTFT <= 1/3 of full prefill: ${verdict(at15.ttftVsFull, 1 / 3)}; <= 1/2 of prefix caching: ${verdict(at15.ttftVsPrefix, 0.5)}.`,
      `The same, one request at a time (no queueing): ${verdict(at15.aloneVsFull, 1 / 3)}; ${verdict(at15.aloneVsPrefix, 0.5)}.`,
      '',
    );
  }
  return lines;
}

export async function ragCommand(argv: readonly string[]): Promise<void> {
  const args = new BenchArgs(argv);
  const parts = args.list('parts', ['quality', 'speed']);
  const log = (line: string) => process.stderr.write(`${line}\n`);
  const shares = args.list('shares', ['0', '0.05', '0.15', '0.3']).map(Number);
  const data: { machine: unknown; quality?: RagQualityResult; speed?: RagSpeedResult } = { machine: machineInfo() };
  const md = ['# RAG chunk reuse (CacheBlend)', ''];
  if (parts.includes('quality')) {
    data.quality = measureRagQuality({
      model: args.string('quality-model', join(repoRoot, 'models', 'stories260K.gguf')),
      texts: args.int('texts', 8), pool: args.int('stories', 16), storyTokens: args.int('story-tokens', 80), documents: args.int('documents', 5),
      answerTokens: args.int('answer-tokens', 32), shares: [...shares, 1], seed: args.int('seed', 7), log,
    });
    md.push(...qualityMarkdown(data.quality));
  }
  if (parts.includes('speed')) {
    const model = args.string('model', '') || (await ensureBenchModel('tinyllama-1.1b-8k', 'q8_0'));
    const chunkTokens = args.int('chunk-tokens', 512), chunks = args.int('chunks', 6), systemTokens = args.int('system-tokens', 31);
    const questionTokens = args.int('question-tokens', 32), outputTokens = args.int('output-tokens', 16);
    data.speed = await measureRagSpeed({
      model, pool: args.int('pool', 40), chunkTokens, chunks, systemTokens, questionTokens, outputTokens, requests: args.int('requests', 6),
      rate: Number(args.string('rate', '0.12')), shares, rounds: args.int('rounds', 1), alone: args.int('alone', 2), seed: args.int('seed', 7),
      engine: { maxSeqs: 8, maxContext: 1 + systemTokens + chunks * chunkTokens + questionTokens + outputTokens, kvMemory: args.int('kv-mib', 2048) * 2 ** 20 }, log,
    });
    md.push(...speedMarkdown(data.speed));
  }
  writeReport('rag', data, md.join('\n'));
}
