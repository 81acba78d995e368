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
import type { EngineOptions } from '../src/engine/engine-types.js';
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

/**
 * Per request, the tokens of `a` and `b` compared up to their first divergence (past it the two continue
 * from different texts), and the chosen tokens' logprob differences where they agree.
 */
function compare(a: Run[], b: Run[], maxTokens: number) {
  let compared = 0;
  let agreed = 0;
  let maxLogprobDiff = 0;
  const divergence = a.map((x, i) => {
    const y = b[i]!;
    let k = 0;
    while (k < Math.min(x.tokens.length, y.tokens.length) && x.tokens[k] === y.tokens[k]) {
      maxLogprobDiff = Math.max(maxLogprobDiff, Math.abs(x.logprobs[k]! - y.logprobs[k]!));
      k++;
    }
    agreed += k;
    compared += k < maxTokens ? k + 1 : k;
    return k < maxTokens ? k : undefined;
  });
  return { compared, agreed, agreement: compared === 0 ? 1 : agreed / compared, maxLogprobDiff, divergence };
}

export async function prefixAgreementCommand(argv: readonly string[]): Promise<void> {
  const args = new BenchArgs(argv);
  const shape = args.string('shape', 'tinyllama-1.1b');
  const dtype = args.string('dtype', 'q8_0');
  if (!isShapeName(shape) || !isBenchDType(dtype)) throw new Error(`unknown --shape ${shape} or --dtype ${dtype}`);
  const requests = args.int('requests', 16);
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
  const budget = args.int('batch', 256);
  const common = { maxSeqs: requests, maxContext: 2048 };
  // Three runs: the reference (cache off), the cache on (its prefix computed by another request), and the
  // cache off with another step budget: the noise floor of computing the same tokens in other chunks.
  const configs = {
    off: { ...common, maxBatchTokens: budget, prefixCache: false },
    on: { ...common, maxBatchTokens: budget, prefixCache: true },
    rechunked: { ...common, maxBatchTokens: Math.max(16, Math.floor(budget / 4) + 7), prefixCache: false },
  };
  const results = {} as Record<keyof typeof configs, Run[]>;
  for (const [mode, opts] of Object.entries(configs) as [keyof typeof configs, EngineOptions][]) {
    const core = createEngineCore(model, tokenizer, opts);
    // With the cache on, a first request computes the prefix alone; the measured ones then reuse it.
    if (mode === 'on') runAll(core, [[...prefix, token()]], 1);
    results[mode] = runAll(core, prompts, maxTokens);
    core.close();
  }
  const cache = compare(results.on, results.off, maxTokens);
  const floor = compare(results.rechunked, results.off, maxTokens);
  const rows = prompts.map((p, i) => [i, p.length, results.on[i]!.cached, cache.divergence[i] ?? 'none', floor.divergence[i] ?? 'none']);
  const percent = (x: number) => `${(100 * x).toFixed(2)}%`;
  const md = [
    `# Prefix cache: greedy agreement, cache on vs off (${shape} ${dtype}, native)`,
    '',
    `${requests} requests share a ${prefixLen}-token prefix (computed by another request when the cache is on), ${maxTokens} greedy tokens each, step budget ${budget}. ` +
      `Noise floor: the cache off with a step budget of ${configs.rechunked.maxBatchTokens}, so the same tokens are computed in other chunks.`,
    '',
    markdownTable(['request', 'prompt tokens', 'cached (on)', 'first divergence: cache on', 'first divergence: other chunks'], rows),
    '',
    `Top-1 agreement with the cache: ${percent(cache.agreement)} of ${cache.compared} positions compared (largest |logprob difference| of an agreeing token ${cache.maxLogprobDiff.toExponential(2)}).`,
    `Noise floor, other chunks without the cache: ${percent(floor.agreement)} of ${floor.compared} (${floor.maxLogprobDiff.toExponential(2)}).`,
  ].join('\n');
  writeReport('prefix-agreement', { shape, dtype, requests, prefixLen, maxTokens, budget, configs, cache, floor }, md);
  model.close();
}
