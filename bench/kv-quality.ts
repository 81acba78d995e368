// `npm run bench -- kv-quality`: how much a lossy KV configuration changes what the model predicts,
// measured without a dataset (DESIGN.md §5). The model writes its own texts with the f32 cache (seeded,
// temperature 0.8, from BOS to the length asked); every configuration then reads those texts
// teacher-forced, and its next-token distributions are compared with the f32 cache's at every position
// (kv-quality-metrics.ts defines the numbers). Noise floors (the f32 cache on another thread count, in
// other chunks, on the other backend) say how small a difference can still be told from kernel noise.
import { statSync } from 'node:fs';
import { join } from 'node:path';
import { loadNativeAddon } from '../src/backend/native/addon.js';
import type { TransformerModel } from '../src/model/transformer.js';
import { loadModel, type BackendKind } from '../src/model/load.js';
import { BenchArgs } from './args.js';
import { qualityConfigs, REFERENCE, type NoiseFloors } from './kv-quality-configs.js';
import { DEFAULT_PEER_TYPES, llamaCppConfigs } from './kv-quality-llama-cpp.js';
import { firstDivergence, lowerMedian, summarize, type PositionScore, type QualitySummary } from './kv-quality-metrics.js';
import { kvQualityMarkdown } from './kv-quality-report.js';
import { scoreText } from './kv-quality-score.js';
import { generateText } from './kv-quality-text.js';
import { ensureBenchModel, isBenchDType, isShapeName } from './models.js';
import { repoRoot } from './paths.js';
import { writeReport } from './report.js';

export interface KVQualityOptions {
  /** GGUF path. */
  model: string;
  backend?: BackendKind;
  /** Native compute threads (default: the addon's, one per physical core). */
  threads?: number;
  continuations: number;
  /** Tokens per text, BOS included (default: the model's context). */
  tokens?: number;
  seed: number;
  temperature?: number;
  /** Tokens per teacher-forced step (default 64). */
  chunk?: number;
  floors: { otherThreads?: number; rechunk?: number; otherBackend?: boolean };
  /** KV formats to measure, by name (default: all the harness knows). */
  formats?: string[];
  /** llama.cpp's caches on the same texts (skipped when node-llama-cpp is missing). */
  peer?: { types: string[]; threads: number };
  log?: (line: string) => void;
}

export interface ConfigQuality {
  name: string;
  against: string;
  /** All texts' positions together. */
  pooled: QualitySummary;
  texts: (QualitySummary & { firstDivergence: number | null })[];
  /** Lower median over texts of the first divergence; null when at least half of the texts never diverged. */
  medianFirstDivergence: number | null;
}

export interface KVQualityResult {
  model: string;
  backend: BackendKind;
  threads: number | null;
  tokens: number;
  continuations: number;
  seed: number;
  temperature: number;
  chunk: number;
  /** The generated texts (token ids, BOS first); text i was sampled with seed + i. */
  texts: number[][];
  preview: string;
  configs: ConfigQuality[];
  peer: { version: string; skipped: { name: string; reason: string }[] } | { unavailable: string } | null;
}

export async function measureKVQuality(opts: KVQualityOptions): Promise<KVQualityResult> {
  const log = opts.log ?? (() => {});
  const backend = opts.backend ?? 'native';
  const temperature = opts.temperature ?? 0.8;
  const chunk = opts.chunk ?? 64;
  const { model, tokenizer } = loadModel(opts.model, { backend, threads: opts.threads });
  let other: TransformerModel | undefined;
  let peer: Awaited<ReturnType<typeof llamaCppConfigs>> | null = null;
  try {
    const c = model.config;
    const tokens = opts.tokens || c.contextLength;
    if (tokens < 2 || tokens > c.contextLength) throw new Error(`--tokens must be from 2 to the model's context (${c.contextLength}), got ${tokens}`);
    const addon = backend === 'native' ? loadNativeAddon() : undefined;
    const floors: NoiseFloors = {};
    if (addon && opts.floors.otherThreads) floors.threads = { count: opts.floors.otherThreads, set: (n) => addon.setThreads(n), get: () => addon.getThreads() };
    if (opts.floors.rechunk) floors.chunk = opts.floors.rechunk;
    if (opts.floors.otherBackend) {
      other = loadModel(opts.model, { backend: backend === 'native' ? 'reference' : 'native', threads: opts.threads }).model;
      floors.otherBackend = other;
    }
    const configs = qualityConfigs(model, floors, opts.formats);
    if (opts.peer) peer = await llamaCppConfigs(opts.model, REFERENCE, opts.peer.types, { threads: opts.peer.threads, chunk, vocabSize: c.vocabSize, headDim: c.headDim });
    if (peer && 'configs' in peer) configs.push(...peer.configs);
    const banned = Array.from({ length: c.vocabSize }, (_, id) => id).filter((id) => tokenizer.isEndOfGeneration(id));
    const texts: number[][] = [];
    const perText = new Map(configs.slice(1).map((cfg) => [cfg.name, [] as ConfigQuality['texts']]));
    const pooled = new Map(configs.slice(1).map((cfg) => [cfg.name, [] as PositionScore[]]));
    for (let i = 0; i < opts.continuations; i++) {
      log(`text ${i + 1}/${opts.continuations}: generating ${tokens} tokens (seed ${opts.seed + i}, temperature ${temperature})`);
      const text = await generateText(configs[0]!, { bos: tokenizer.bos ?? 1, tokens, vocabSize: c.vocabSize, temperature, seed: opts.seed + i, banned });
      texts.push(text);
      log(`text ${i + 1}/${opts.continuations}: scoring under ${configs.length} configurations`);
      for (const [name, s] of await scoreText(text, configs, chunk, c.vocabSize)) {
        perText.get(name)!.push({ ...summarize(s), firstDivergence: firstDivergence(s) });
        const all = pooled.get(name)!;
        for (const x of s) all.push(x);
      }
    }
    const results: ConfigQuality[] = configs.slice(1).map((cfg) => {
      const t = perText.get(cfg.name)!;
      const median = lowerMedian(t.map((x) => x.firstDivergence ?? Infinity));
      return { name: cfg.name, against: cfg.against ?? REFERENCE, pooled: summarize(pooled.get(cfg.name)!), texts: t, medianFirstDivergence: Number.isFinite(median) ? median : null };
    });
    return {
      model: opts.model,
      backend,
      threads: addon ? addon.getThreads() : null,
      tokens,
      continuations: opts.continuations,
      seed: opts.seed,
      temperature,
      chunk,
      texts,
      preview: texts.length > 0 ? tokenizer.decode(texts[0]!.slice(0, 80)) : '',
      configs: results,
      peer: peer === null ? null : 'configs' in peer ? { version: peer.version, skipped: peer.skipped } : peer,
    };
  } finally {
    if (peer && 'close' in peer) await peer.close();
    for (const m of [other, model]) {
      m?.backend.close();
      m?.close();
    }
  }
}

/** The reference backend is plain TypeScript: as a noise floor it is on by default only for small models. */
const OTHER_BACKEND_MAX_BYTES = 100 * 1024 * 1024;

export async function kvQualityCommand(argv: readonly string[]): Promise<void> {
  const args = new BenchArgs(argv);
  let model = args.string('model', join(repoRoot, 'models', 'stories260K.gguf'));
  const shape = args.string('shape', '');
  if (shape) {
    const dtype = args.string('dtype', 'q8_0');
    if (!isShapeName(shape) || !isBenchDType(dtype)) throw new Error(`unknown --shape ${shape} or --dtype ${dtype}`);
    model = await ensureBenchModel(shape, dtype);
  }
  const backend = args.string('backend', 'native');
  if (backend !== 'native' && backend !== 'reference') throw new Error(`--backend must be native or reference, got "${backend}"`);
  const threads = args.int('threads', 0) || undefined;
  const defaultThreads = backend === 'native' ? (threads ?? loadNativeAddon().getThreads()) : 1;
  const floors = args.list('floors', ['threads', 'chunks', ...(statSync(model).size <= OTHER_BACKEND_MAX_BYTES ? ['backend'] : [])]);
  const unknownFloor = floors.find((f) => !['threads', 'chunks', 'backend'].includes(f));
  if (unknownFloor) throw new Error(`unknown --floors entry "${unknownFloor}"; choose from threads, chunks, backend`);
  const otherThreads = args.int('other-threads', defaultThreads > 1 ? 1 : 2);
  const result = await measureKVQuality({
    model,
    backend,
    threads,
    continuations: args.int('continuations', 4),
    tokens: args.int('tokens', 0),
    seed: args.int('seed', 1),
    temperature: Number(args.string('temperature', '0.8')),
    chunk: args.int('chunk', 64),
    floors: {
      otherThreads: floors.includes('threads') ? otherThreads : undefined,
      rechunk: floors.includes('chunks') ? args.int('rechunk', 17) : undefined,
      otherBackend: floors.includes('backend'),
    },
    formats: args.list('formats', []).length > 0 ? args.list('formats', []) : undefined,
    peer: args.flag('no-peer') ? undefined : { types: args.list('peer-types', DEFAULT_PEER_TYPES), threads: args.int('peer-threads', defaultThreads) },
    log: (line) => process.stderr.write(`${line}\n`),
  });
  writeReport('kv-quality', result, kvQualityMarkdown(result));
}
