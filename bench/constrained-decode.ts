// Decoding under a response format, end to end, against decoding freely on the same model and prompts:
// vserve's Engine (its masks on the step's critical path) and llama.cpp with the same formats as GBNF
// grammars (node-llama-cpp). Each engine's time per decode step is taken between consecutive tokens;
// a constrained reply may end early, so the steps each run produced are reported with it.
import type { Token } from 'node-llama-cpp';
import { Engine } from '../src/index.js';
import type { ResponseFormat } from '../src/constrained/json-schema.js';
import { loadLlamaCppModel } from './single/llama-cpp.js';
import { median, round } from './stats.js';

/** A format both engines can apply: vserve's response_format and the JSON schema llama.cpp gets as GBNF. */
export interface DecodeFormat {
  name: string;
  format: ResponseFormat | undefined;
  /** llama.cpp: 'json' (its built-in JSON grammar), a schema, or undefined for no grammar. */
  grammar: 'json' | object | undefined;
}

export const RECORD_SCHEMA = {
  type: 'object',
  properties: { name: { type: 'string' }, city: { enum: ['Paris', 'London', 'Rome', 'Oslo'] }, bio: { type: 'string' }, tags: { type: 'array', items: { type: 'string' } } },
  required: ['name', 'city', 'bio', 'tags'],
  additionalProperties: false,
} as const;

export const DECODE_FORMATS: readonly DecodeFormat[] = [
  { name: 'free', format: undefined, grammar: undefined },
  { name: 'json_object', format: { type: 'json_object' }, grammar: 'json' },
  { name: 'record schema', format: { type: 'json_schema', schema: RECORD_SCHEMA }, grammar: RECORD_SCHEMA },
];

export interface DecodeRun {
  engine: 'vserve' | 'llama.cpp';
  format: string;
  /** Median time between consecutive tokens over every prompt (ms). */
  stepMs: number;
  /** Decode steps timed in all. */
  steps: number;
}

export interface DecodeSetup {
  modelPath: string;
  prompts: readonly string[];
  maxTokens: number;
  threads: number;
}

/** The gaps between tokens of one reply (the first token's time is prefill, not decode). */
function gapsOf(times: readonly number[]): number[] {
  return times.slice(1).map((t, i) => t - times[i]!);
}

export async function vserveDecode(s: DecodeSetup, formats: readonly DecodeFormat[]): Promise<DecodeRun[]> {
  const engine = await Engine.load(s.modelPath, { maxSeqs: 1, threads: s.threads, prefixCache: false });
  try {
    for await (const _ of engine.generate(s.prompts[0]!, { temperature: 0, maxTokens: 4 })); // warm-up
    const runs: DecodeRun[] = [];
    for (const f of formats) {
      const gaps: number[] = [];
      for (const prompt of s.prompts) {
        const times: number[] = [];
        for await (const d of engine.generate(prompt, { temperature: 0, maxTokens: s.maxTokens, ...(f.format ? { responseFormat: f.format } : {}) })) {
          for (let i = 0; i < d.tokens.length; i++) times.push(performance.now());
        }
        gaps.push(...gapsOf(times));
      }
      runs.push({ engine: 'vserve', format: f.name, stepMs: round(median(gaps), 3), steps: gaps.length });
    }
    return runs;
  } finally {
    await engine.close();
  }
}

export async function llamaCppDecode(s: DecodeSetup, formats: readonly DecodeFormat[]): Promise<DecodeRun[]> {
  const { LlamaGrammarEvaluationState } = await import('node-llama-cpp');
  const model = await loadLlamaCppModel(s.modelPath);
  const context = await model.createContext({ contextSize: 1024, batchSize: 256, threads: { ideal: s.threads, min: s.threads }, sequences: 1 });
  try {
    const sequence = context.getSequence();
    const llama = model.llama;
    const runs: DecodeRun[] = [];
    for (const f of formats) {
      const grammar = f.grammar === undefined ? undefined : f.grammar === 'json' ? await llama.getGrammarFor('json') : await llama.createGrammarForJsonSchema(f.grammar as never);
      const gaps: number[] = [];
      for (const prompt of s.prompts) {
        await sequence.clearHistory();
        const tokens = model.tokenize(prompt);
        const times: number[] = [];
        const grammarEvaluationState = grammar ? new LlamaGrammarEvaluationState({ model, grammar }) : undefined;
        for await (const token of sequence.evaluate(tokens as Token[], { temperature: 0, ...(grammarEvaluationState ? { grammarEvaluationState } : {}) })) {
          times.push(performance.now());
          if (model.isEogToken(token) || times.length >= s.maxTokens) break;
        }
        gaps.push(...gapsOf(times));
      }
      runs.push({ engine: 'llama.cpp', format: f.name, stepMs: round(median(gaps), 3), steps: gaps.length });
    }
    return runs;
  } finally {
    await context.dispose();
    await model.dispose();
  }
}
