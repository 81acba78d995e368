// Teacher-forced scoring of one text under every configuration at once: each chunk goes through all of
// them before the next, so only one chunk's logits per configuration are ever held (a TinyLlama text of
// 2048 tokens would be 262 MB of logits per configuration otherwise).
import { logSoftmax, scorePosition, type PositionScore } from './kv-quality-metrics.js';
import type { QualityConfig, TextRun } from './kv-quality-run.js';

/**
 * Per configuration compared (all but the first, which is the default `against`), its score at each
 * position t = 0 .. text.length - 2 (row t predicts text[t + 1]; the last row has nothing to predict).
 */
export async function scoreText(text: readonly number[], configs: readonly QualityConfig[], chunk: number, vocabSize: number): Promise<Map<string, PositionScore[]>> {
  const names = configs.map((c) => c.name);
  const against = configs.map((c, i) => (i === 0 ? -1 : names.indexOf(c.against ?? names[0]!)));
  against.forEach((a, i) => {
    if (i > 0 && a < 0) throw new Error(`${names[i]} is compared with "${configs[i]!.against}", which is not measured`);
  });
  if (new Set(names).size !== names.length) throw new Error(`configuration names must be unique: ${names.join(', ')}`);
  const scores = new Map(configs.slice(1).map((c) => [c.name, [] as PositionScore[]]));
  const logprobs = configs.map(() => new Float64Array(vocabSize));
  const runs: TextRun[] = [];
  try {
    for (const c of configs) runs.push(await c.open(text.length));
    for (let start = 0; start < text.length; start += chunk) {
      const ids = Int32Array.from(text.slice(start, start + chunk));
      const logits: Float32Array[] = [];
      for (const [i, run] of runs.entries()) {
        const out = await run.feed(ids, start);
        if (out.length !== ids.length * vocabSize) throw new Error(`${names[i]} gave ${out.length} logits for ${ids.length} rows of ${vocabSize}`);
        logits.push(out);
      }
      for (let r = 0; r < ids.length && start + r < text.length - 1; r++) {
        logits.forEach((l, i) => logSoftmax(l.subarray(r * vocabSize, (r + 1) * vocabSize), logprobs[i]));
        for (let i = 1; i < configs.length; i++) {
          scores.get(names[i]!)!.push(scorePosition(logprobs[against[i]!]!, logprobs[i]!, text[start + r + 1]!));
        }
      }
    }
  } finally {
    for (const run of runs) await run.close();
  }
  return scores;
}
