// `npm run bench -- prefix-agreement`: does a cached prefix change what the model says? On the native
// backend a prefix computed in another batch or chunking can differ in a logit's last bits (the split
// decode path, for one, is taken only for small batches). Requests that share a long prefix run greedy
// with the prefix cache on (their prefix computed by another request, in another chunking) and off; per
// request, the generated tokens are compared position by position up to the first divergence, and the
// chosen tokens' logprobs where they agree.
import { BenchArgs } from './args.js';
import { ensureBenchModel, isShapeName, isBenchDType } from './models.js';
import { markdownTable, writeReport } from './report.js';
import { createEngineCore } from '../src/engine/engine-setup.js';
import type { EngineCore } from '../src/engine/engine-core.js';
import { Rng } from '../src/engine/rng.js';
import { loadModel } from '../src/model/load.js';

interface Run {
  tokens: number[];
  logprobs: number[];
  cached: number;
}

function runAll(core: EngineCore, prompts: number[][], maxTokens: number): Run[] {
  const runs: Run[] = prompts.map(() => ({ tokens: [], logprobs: [], cached: 0 }));
  prompts.forEach((p, id) => core.submit(id, p, { temperature: 0, maxTokens, logprobs: true }));
  while (core.hasWork) {
    for (const e of core.step()) {
      if (e.error) throw new Error(`request ${e.id}: ${e.error.message}`);
      const r = runs[e.id]!;
      r.tokens.push(...e.delta!.tokens);
      r.logprobs.push(...(e.delta!.logprobs ?? []).map((l) => l.logprob));
      if (e.delta!.usage) r.cached = e.delta!.usage.prompt_tokens_details.cached_tokens;
    }
  }
  return runs;
}

export async function prefixAgreementCommand(argv: readonly string[]): Promise<void> {
  const args = new BenchArgs(argv);
  const shape = args.string('shape', 'tinyllama-1.1b');
  const dtype = args.string('dtype', 'q8_0');
  if (!isShapeName(shape) || !isBenchDType(dtype)) throw new Error(`unknown --shape ${shape} or --dtype ${dtype}`);
  const requests = args.int('requests', 8);
  const prefixLen = args.int('prefix', 600);
  const maxTokens = args.int('tokens', 64);
  const path = await ensureBenchModel(shape, dtype);
  const { model, tokenizer } = loadModel(path, { threads: args.int('threads', 0) || undefined });
  const rng = new Rng(11);
  const vocab = model.config.vocabSize;
  const token = () => 3 + Math.floor(rng.next() * (vocab - 3));
  const prefix = [tokenizer.bos ?? 1, ...Array.from({ length: prefixLen - 1 }, token)];
  // Tails of different lengths, so the cached prefix ends at different points of each request's chunks.
  const prompts = Array.from({ length: requests }, (_, i) => [...prefix, ...Array.from({ length: 1 + ((i * 37) % 97) }, token)]);
  const common = { maxSeqs: requests, maxBatchTokens: args.int('batch', 256), maxContext: 2048 };
  const results: Record<'on' | 'off', Run[]> = { on: [], off: [] };
  for (const mode of ['off', 'on'] as const) {
    const core = createEngineCore(model, tokenizer, { ...common, prefixCache: mode === 'on' });
    // With the cache on, a first request computes the prefix alone; the measured ones then reuse it.
    if (mode === 'on') runAll(core, [[...prefix, token()]], 1);
    results[mode] = runAll(core, prompts, maxTokens);
    core.close();
  }
  let compared = 0;
  let agreed = 0;
  let maxLogprobDiff = 0;
  const rows = prompts.map((p, i) => {
    const [on, off] = [results.on[i]!, results.off[i]!];
    let k = 0;
    while (k < Math.min(on.tokens.length, off.tokens.length) && on.tokens[k] === off.tokens[k]) {
      maxLogprobDiff = Math.max(maxLogprobDiff, Math.abs(on.logprobs[k]! - off.logprobs[k]!));
      k++;
    }
    const diverged = k < maxTokens;
    // Past a divergence the two continue from different texts, so only positions up to it compare.
    compared += diverged ? k + 1 : k;
    agreed += k;
    return [i, p.length, on.cached, diverged ? k : 'none', k];
  });
  const agreement = compared === 0 ? 1 : agreed / compared;
  const md = [
    `# Prefix cache: greedy agreement, cache on vs off (${shape} ${dtype}, native)`,
    '',
    `${requests} requests share a ${prefixLen}-token prefix (computed by another request when the cache is on), ${maxTokens} greedy tokens each, step budget ${common.maxBatchTokens}.`,
    '',
    markdownTable(['request', 'prompt tokens', 'cached (on)', 'first divergence', 'agreeing tokens'], rows),
    '',
    `Top-1 agreement: ${(100 * agreement).toFixed(2)}% of ${compared} positions compared; largest |logprob difference| of an agreeing token: ${maxLogprobDiff.toExponential(2)}.`,
  ].join('\n');
  writeReport('prefix-agreement', { shape, dtype, requests, prefixLen, maxTokens, rows, compared, agreed, agreement, maxLogprobDiff }, md);
  model.close();
}
