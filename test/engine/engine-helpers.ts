// Shared by the engine tests: the bundled model on the reference backend, prompts of many lengths, the
// single-sequence generate() outputs the engine must reproduce, and a loop that drives an EngineCore.
import type { ContiguousKV } from '../../src/backend/backend.js';
import { generate } from '../../src/engine/generate.js';
import type { EngineCore } from '../../src/engine/engine-core.js';
import type { EngineDelta } from '../../src/engine/engine-types.js';
import type { RequestParams } from '../../src/engine/completion.js';
import { loadModel, type LoadedModel } from '../../src/model/load.js';
import { isKVError, VirtualKVManager } from '../../src/kv/index.js';
import { bundledModel, STORIES_GREEDY } from '../paths.js';

export const KV_MANAGERS = ['virtual', 'paged', 'static'] as const;
export const SCHEDULERS = ['sarathi', 'vllm', 'static'] as const;

let loaded: LoadedModel | undefined;
export function tinyModel(): LoadedModel {
  loaded ??= loadModel(bundledModel, { backend: 'reference' });
  return loaded;
}

/** n prompts of clearly different lengths (token ids, BOS first), and a max_tokens for each. */
export function mixedRequests(n: number): { prompt: number[]; maxTokens: number }[] {
  const { tokenizer } = tinyModel();
  return Array.from({ length: n }, (_, i) => ({
    prompt: tokenizer.encode(`Once upon a time${STORIES_GREEDY.slice(0, (i * 37) % 150)}`, { addSpecial: true }),
    maxTokens: 6 + ((i * 7) % 23),
  }));
}

/** What generate() — one sequence, alone — produces for a request. */
export function aloneTokens(prompt: number[], params: RequestParams, kv?: ContiguousKV): number[] {
  const { model, tokenizer } = tinyModel();
  const it = generate(model, tokenizer, prompt, { ...params, ...(kv ? { kv } : {}) });
  const tokens: number[] = [];
  for (let r = it.next(); !r.done; r = it.next()) tokens.push(...r.value.tokens);
  return tokens;
}

export interface Outcome {
  tokens: number[];
  text: string;
  last?: EngineDelta;
  error?: string;
}

/** Steps the core until every request has finished; returns each request's outcome by id. */
export function drain(core: EngineCore, outcomes = new Map<number, Outcome>(), maxSteps = 100_000): Map<number, Outcome> {
  for (let i = 0; core.hasWork; i++) {
    if (i >= maxSteps) throw new Error(`not finished after ${maxSteps} steps`);
    record(core.step(), outcomes);
  }
  return outcomes;
}

export function record(events: ReturnType<EngineCore['step']>, outcomes: Map<number, Outcome>): void {
  for (const e of events) {
    const o = outcomes.get(e.id) ?? { tokens: [], text: '' };
    outcomes.set(e.id, o);
    if (e.error) o.error = `${e.error.name}: ${e.error.message}`;
    if (e.delta) {
      o.tokens.push(...e.delta.tokens);
      o.text += e.delta.text;
      o.last = e.delta;
    }
  }
}

/** Why the virtual manager cannot run here (the addon is built without vmem), or undefined when it can. */
export function virtualUnavailable(): string | undefined {
  try {
    new VirtualKVManager({ layers: 1, kvHeads: 1, headDim: 4, maxSlots: 1, maxContext: 16, budgetBytes: 1 << 16 }).close();
    return undefined;
  } catch (e) {
    if (isKVError(e, 'ERR_KV_NATIVE_MISSING')) return 'the native addon is built without vmem';
    throw e;
  }
}
