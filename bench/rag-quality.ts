// Quality of blended documents (CacheBlend, engine/blend.ts) with the KV quality harness's metrics: the
// model's own stories as documents, several per request in a random order after a short system prompt,
// then a question; the answer is the full prompt's greedy continuation. Each configuration reads the
// same prompt with its documents blended from the chunk store and is teacher-forced through the answer:
// at every answer position, KL divergence and top-1 agreement of its next-token distribution against the
// full prompt's. The noise floor is the full prompt computed in other step sizes. Also measured: documents
// computed after the first token only, and gradual filtering. Runs the engine's own
// scheduler, chunk jobs, placement and selective recompute (an EngineCore driven step by step).
import type { RequestParams } from '../src/engine/completion.js';
import type { EngineCore } from '../src/engine/engine-core.js';
import { createEngineCore } from '../src/engine/engine-setup.js';
import type { EngineOptions } from '../src/engine/engine-types.js';
import { Rng } from '../src/engine/rng.js';
import { loadModel } from '../src/model/load.js';
import type { TransformerModel } from '../src/model/transformer.js';
import { logSoftmax, scorePosition, summarize, type PositionScore, type QualitySummary } from './kv-quality-metrics.js';

export interface RagQualityOptions {
  model: string;
  /** Requests scored. */
  texts: number;
  /** Stories generated for the document pool. */
  pool: number;
  /** Tokens per story (the model's own sampled text). */
  storyTokens: number;
  /** Documents per request. */
  documents: number;
  /** Answer tokens scored per request. */
  answerTokens: number;
  /** Recompute shares measured (with the 'prefix' context); 0.15 is also run with the 'bos' context. */
  shares: number[];
  seed: number;
  log?: (line: string) => void;
}

export interface RagQualityRow {
  name: string;
  recompute: number | null;
  context: string | null;
  summary: QualitySummary;
  /** Requests whose greedy answer equals the full prompt's, token for token. */
  exactAnswers: number;
}

export interface RagQualityResult {
  model: string;
  texts: number;
  promptTokens: number[];
  documentsPerRequest: number;
  storyTokens: number;
  answerTokens: number;
  rows: RagQualityRow[];
}

const SYSTEM = ' Here are some stories.';
const QUESTION = ' Which story was the best? The best story was';
/** A step budget holding the whole prompt: the selection sees every document token at once. */
const STEP_TOKENS = 512;

/** Captures the logits of the forward passes that produce any (one request runs at a time here). */
function logitTap(model: TransformerModel): () => Float32Array {
  let last: Float32Array | undefined;
  const forward = model.forward.bind(model);
  model.forward = (batch, kv) => {
    const logits = forward(batch, kv);
    if (batch.logitRows.length > 0) last = logits.slice();
    return logits;
  };
  return () => {
    if (!last) throw new Error('rag quality: no logits were produced');
    const l = last;
    last = undefined;
    return l;
  };
}

/** Runs one request alone to its end; returns its tokens. */
function complete(core: EngineCore, id: number, prompt: readonly number[], params: RequestParams): number[] {
  const tokens: number[] = [];
  const events = core.submit(id, prompt, params);
  for (;;) {
    for (const e of events) {
      if (e.error) throw new Error(`rag quality: request ${id} failed: ${e.error.message}`);
      if (e.delta) tokens.push(...e.delta.tokens);
      if (e.delta?.finish_reason) return tokens;
    }
    if (!core.hasWork) return tokens;
    events.splice(0, events.length, ...core.step());
  }
}

export function measureRagQuality(o: RagQualityOptions): RagQualityResult {
  const log = o.log ?? (() => {});
  const { model, tokenizer } = loadModel(o.model);
  const bos = tokenizer.bos ?? 1;
  const eos = tokenizer.eos;
  const context = model.config.contextLength;
  const takeLogits = logitTap(model);
  const core = (opts: EngineOptions) => createEngineCore(model, tokenizer, { maxSeqs: 4, maxBatchTokens: STEP_TOKENS, maxContext: context, ...opts });
  let nextId = 1;

  // The document pool: the model's own stories, sampled from BOS (end of text never drawn).
  const writer = core({ prefixCache: false });
  const stories = Array.from({ length: o.pool }, (_, i) =>
    complete(writer, nextId++, [bos], { temperature: 0.8, seed: o.seed + i, maxTokens: o.storyTokens, ...(eos !== undefined ? { logitBias: { [eos]: -100 } } : {}) }));
  const system = tokenizer.encode(SYSTEM, { addSpecial: false });
  const question = tokenizer.encode(QUESTION, { addSpecial: false });

  const rng = new Rng(o.seed);
  const requests = Array.from({ length: o.texts }, () => {
    const order = [...stories.keys()].sort(() => rng.next() - 0.5).slice(0, o.documents);
    const prompt = [bos, ...system];
    const documents: [number, number][] = [];
    for (const s of order) {
      documents.push([prompt.length, prompt.length + stories[s]!.length]);
      prompt.push(...stories[s]!);
    }
    prompt.push(...question);
    if (prompt.length + o.answerTokens > context) throw new Error(`rag quality: a prompt of ${prompt.length} tokens and ${o.answerTokens} answer tokens pass the model's context of ${context}`);
    return { prompt, documents };
  });

  type Config = { name: string; recompute: number | null; context: 'prefix' | 'bos' | 'prefix-gradual' | null; core: EngineCore; params: (docs: [number, number][]) => RequestParams };
  const reference = core({});
  const prefixCore = core({ blendContext: 'prefix' });
  const bosCore = core({ blendContext: 'bos' });
  const gradualCore = core({ blendStages: 3 });
  const configs: Config[] = [
    { name: 'noise floor: full prompt in 16-token steps', recompute: null, context: null, core: core({ maxBatchTokens: 16 }), params: () => ({}) },
    ...o.shares.map((r): Config => ({ name: `blend r=${r * 100}%`, recompute: r, context: 'prefix', core: prefixCore, params: (documents) => ({ documents, blend: { recompute: r } }) })),
    { name: 'blend r=15%, documents computed after BOS only', recompute: 0.15, context: 'bos', core: bosCore, params: (documents) => ({ documents, blend: { recompute: 0.15 } }) },
    { name: 'blend r=15%, gradual filtering over 3 layers', recompute: 0.15, context: 'prefix-gradual', core: gradualCore, params: (documents) => ({ documents, blend: { recompute: 0.15 } }) },
  ];

  const scores = new Map<string, PositionScore[]>(configs.map((c) => [c.name, []]));
  const exact = new Map<string, number>(configs.map((c) => [c.name, 0]));
  requests.forEach(({ prompt, documents }, t) => {
    const answer = complete(reference, nextId++, prompt, { temperature: 0, maxTokens: o.answerTokens });
    for (const c of configs) {
      const greedy = complete(c.core, nextId++, prompt, { temperature: 0, maxTokens: o.answerTokens, ...c.params(documents) });
      if (greedy.join() === answer.join()) exact.set(c.name, exact.get(c.name)! + 1);
    }
    for (let k = 0; k < answer.length; k++) {
      const text = [...prompt, ...answer.slice(0, k)];
      complete(reference, nextId++, text, { temperature: 0, maxTokens: 1 });
      const ref = logSoftmax(takeLogits());
      for (const c of configs) {
        complete(c.core, nextId++, text, { temperature: 0, maxTokens: 1, ...c.params(documents) });
        scores.get(c.name)!.push(scorePosition(ref, logSoftmax(takeLogits()), answer[k]!));
      }
    }
    log(`rag quality: request ${t + 1}/${requests.length} scored (${prompt.length} prompt tokens)`);
  });
  return {
    model: o.model,
    texts: o.texts,
    promptTokens: requests.map((r) => r.prompt.length),
    documentsPerRequest: o.documents,
    storyTokens: o.storyTokens,
    answerTokens: o.answerTokens,
    rows: configs.map((c) => ({ name: c.name, recompute: c.recompute, context: c.context, summary: summarize(scores.get(c.name)!), exactAnswers: exact.get(c.name)! })),
  };
}
