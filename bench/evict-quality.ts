// `npm run bench -- evict --parts quality`: what each eviction policy loses, with the KV quality
// harness (kv-quality-*.ts): the model's own texts, teacher-forced, next-token distributions compared
// with the full f32 cache's. Each text is a prompt of `promptTokens` tokens, a "question" of
// `questionTokens` and a continuation; the scored positions are the continuation's, for every
// configuration alike:
// - question-agnostic: a prompt-time policy compresses right after the prompt (knowing nothing of what
//   follows); a decode-time policy keeps the sequence within the budget from the start;
// - question-aware (SnapKV's setting, prompt-time policies only): the prompt and the question are the
//   prompt, so the observation window is the question.
// Budgets are fractions of the prompt. Each policy also runs over a q8_0 cache (against the f32 full
// cache, beside q8_0 with no eviction). Noise floors: the full cache in other chunks and thread counts.
import { loadNativeAddon } from '../src/backend/native/addon.js';
import { EVICTION_POLICIES, type EvictionPolicyName } from '../src/kv/eviction/index.js';
import { loadModel } from '../src/model/load.js';
import { evictionConfig } from './evict-quality-run.js';
import { qualityConfigs, REFERENCE } from './kv-quality-configs.js';
import { summarize, type PositionScore, type QualitySummary } from './kv-quality-metrics.js';
import { scoreText } from './kv-quality-score.js';
import { generateText } from './kv-quality-text.js';
import type { QualityConfig } from './kv-quality-run.js';

export interface EvictionQualityOptions {
  model: string;
  texts: number;
  promptTokens: number;
  questionTokens: number;
  continuationTokens: number;
  /** Fractions of the prompt kept. */
  budgets: number[];
  policies: EvictionPolicyName[];
  /** Also run every policy over a q8_0 cache. */
  q8: boolean;
  seed: number;
  temperature: number;
  /** Prefill tokens per step (the engine's default step budget). */
  prefillChunk: number;
  log: (line: string) => void;
}

export interface EvictionQualityRow {
  name: string;
  policy: EvictionPolicyName | 'none';
  budget: number | null;
  budgetTokens: number | null;
  kv: 'f32' | 'q8_0';
  setting: 'agnostic' | 'question' | 'once' | 'floor' | 'full';
  summary: QualitySummary;
}

export interface EvictionQualityResult {
  model: string;
  texts: number;
  promptTokens: number;
  questionTokens: number;
  continuationTokens: number;
  scoredPositions: number;
  rows: EvictionQualityRow[];
}

export async function measureEvictionQuality(o: EvictionQualityOptions): Promise<EvictionQualityResult> {
  const { model, tokenizer } = loadModel(o.model, { backend: 'native' });
  try {
    const c = model.config;
    const total = o.promptTokens + o.questionTokens + o.continuationTokens;
    if (total > c.contextLength) throw new Error(`prompt + question + continuation (${total}) is past the model's context (${c.contextLength})`);
    const addon = loadNativeAddon();
    const threads = addon.getThreads();
    const base = qualityConfigs(model, { chunk: 17, threads: { count: threads > 1 ? 1 : 2, set: (n) => addon.setThreads(n), get: () => addon.getThreads() } }, ['q8_0']);
    const rows: Omit<EvictionQualityRow, 'summary'>[] = base.slice(1).map((cfg) => ({
      name: cfg.name, policy: 'none', budget: null, budgetTokens: null, kv: cfg.name.startsWith('q8_0') ? 'q8_0' : 'f32', setting: cfg.name.startsWith('q8_0') ? 'full' : 'floor',
    }));
    const configs: QualityConfig[] = [...base];
    // Rows held when the continuation starts: B + Q for every configuration of budget B. Prompt-time
    // policies keep B of the prompt and then add the question; with the window on the question they keep
    // B + Q of prompt and question together; decode-time policies hold B + Q from the start. "sinks, once"
    // is StreamingLLM's choice made once after the prompt: the baseline at the prompt-time policies' memory.
    for (const kv of o.q8 ? (['f32', 'q8_0'] as const) : (['f32'] as const)) {
      for (const policy of o.policies) {
        const decodeTime = EVICTION_POLICIES[policy].when === 'decode';
        const settings: EvictionQualityRow['setting'][] = ['agnostic'];
        if (!decodeTime && kv === 'f32') settings.push('question');
        if (policy === 'sinks') settings.push('once');
        for (const budget of o.budgets) {
          const budgetTokens = Math.round(budget * o.promptTokens);
          for (const setting of settings) {
            const note = setting === 'question' ? ' (window on the question)' : setting === 'once' ? ', once after the prompt' : '';
            const name = `${policy}${note} ${Math.round(budget * 1000) / 10}%${kv === 'q8_0' ? ' q8_0' : ''}`;
            const rowsAtStart = budgetTokens + (decodeTime && setting !== 'once' ? o.questionTokens : 0) + (setting === 'question' ? o.questionTokens : 0);
            configs.push(evictionConfig(model, {
              name, policy, budget: rowsAtStart, prefillChunk: o.prefillChunk, once: setting === 'once',
              promptTokens: o.promptTokens + (setting === 'question' ? o.questionTokens : 0),
              ...(kv === 'q8_0' ? { shape: { type: { k: 'q8_0', v: 'q8_0' } } } : {}),
            }));
            rows.push({ name, policy, budget, budgetTokens: rowsAtStart, kv, setting });
          }
        }
      }
    }
    const banned = Array.from({ length: c.vocabSize }, (_, id) => id).filter((id) => tokenizer.isEndOfGeneration(id));
    const pooled = new Map(rows.map((r) => [r.name, [] as PositionScore[]]));
    // Row t predicts token t + 1: the continuation's predictions are rows from the question's end.
    const firstScored = o.promptTokens + o.questionTokens;
    for (let i = 0; i < o.texts; i++) {
      o.log(`text ${i + 1}/${o.texts}: generating ${total} tokens`);
      const text = await generateText(configs[0]!, { bos: tokenizer.bos ?? 1, tokens: total, vocabSize: c.vocabSize, temperature: o.temperature, seed: o.seed + i, banned });
      o.log(`text ${i + 1}/${o.texts}: scoring ${configs.length} configurations`);
      for (const [name, s] of await scoreText(text, configs, 64, c.vocabSize)) pooled.get(name)!.push(...s.slice(firstScored));
    }
    return {
      model: o.model,
      texts: o.texts,
      promptTokens: o.promptTokens,
      questionTokens: o.questionTokens,
      continuationTokens: o.continuationTokens,
      scoredPositions: o.texts * (o.continuationTokens - 1),
      rows: rows.map((r) => ({ ...r, summary: summarize(pooled.get(r.name)!) })),
    };
  } finally {
    model.backend.close();
    model.close();
  }
}

export { REFERENCE };
