// The Markdown summary of a kv-quality run: one row per configuration, the definitions beside it.
import { basename } from 'node:path';
import type { KVQualityResult } from './kv-quality.js';
import { markdownTable } from './report.js';

/** KL in 3 significant digits; an exact 0 says so. */
const kl = (x: number) => (x === 0 ? '0' : x.toExponential(2));
/** Agreement as a percentage that never rounds a disagreement up to 100%. */
function percent(x: number): string {
  if (x === 1) return '100%';
  const s = (100 * x).toFixed(2);
  return s === '100.00' ? '>99.99%' : `${s}%`;
}
const divergence = (x: number | null) => (x === null ? 'none' : String(x));

export function kvQualityMarkdown(r: KVQualityResult): string {
  const rows = r.configs.map((c) => [
    c.name,
    c.against,
    kl(c.pooled.meanKL),
    kl(c.pooled.p99KL),
    kl(c.pooled.maxKL),
    percent(c.pooled.top1Agreement),
    c.pooled.pplRatio === 1 ? '1' : c.pooled.pplRatio.toFixed(6),
    divergence(c.medianFirstDivergence),
    c.texts.map((t) => divergence(t.firstDivergence)).join(', '),
  ]);
  const f32 = r.configs.find((c) => c.name === 'f32');
  const lines = [
    `# KV quality: ${basename(r.model)}, ${r.backend} backend${r.threads === null ? '' : `, ${r.threads} threads`}`,
    '',
    `${r.continuations} texts of ${r.tokens} tokens sampled from the model with the f32 cache (BOS, then temperature ${r.temperature}, seeds ${r.seed}..${r.seed + r.continuations - 1}, ` +
      `end-of-generation never drawn), read teacher-forced in chunks of ${r.chunk} under each configuration` +
      (f32 ? `; their perplexity under f32 is ${f32.pooled.refPpl.toFixed(3)}.` : '.'),
    '',
    markdownTable(['configuration', 'compared with', 'mean KL', 'p99 KL', 'max KL', 'top-1 agreement', 'ppl ratio', 'first divergence (median)', 'first divergence per text'], rows),
    '',
    `Per scored position t (0 .. ${r.tokens - 2} of each text; row t predicts token t + 1): KL(p_ref || p_config) over the full vocabulary in float64; ` +
      'top-1 agreement = same argmax; ppl ratio = perplexity of the texts under the configuration / under the reference; first divergence = the first t ' +
      'whose argmaxes differ (where a greedy decoder given the text up to t would first choose differently), "none" when no position differs; ' +
      'the median is the lower median over texts, "none" when half or more never diverge. p99 is the nearest rank over all positions of all texts. ' +
      '"f32" is a second, separate run of the reference: it must give exactly 0. The f32 rows below it are noise floors.',
  ];
  if (r.peer) {
    lines.push('');
    if ('unavailable' in r.peer) lines.push(`llama.cpp: not measured, ${r.peer.unavailable}.`);
    else {
      lines.push(`llama.cpp via node-llama-cpp ${r.peer.version}: full logits from \`controlledEvaluate\` (\`generateNext.logits\`), the same texts and chunks. ` +
        'Its f32 cache runs without flash attention (with it, llama.cpp casts f32 K/V to f16); its types are compared with its own f32.');
      for (const s of r.peer.skipped) lines.push(`- ${s.name}: not measured, ${s.reason}.`);
    }
  }
  lines.push('', `Text 1 begins: ${JSON.stringify(r.preview)}`);
  return lines.join('\n') + '\n';
}
