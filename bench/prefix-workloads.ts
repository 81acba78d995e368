// The prefix-cache benchmark's workloads, as token ids (the benchmark models have random weights, so ids
// are exact and every engine sees the same prompts), all from one seed:
//   shared system prompt — users sending one long system prompt plus a question of their own;
//   multi-turn chat      — conversations whose every turn resends the whole history;
//   no shared prefix     — distinct prompts, where the cache can only cost.
import { readFileSync } from 'node:fs';
import { Rng } from '../src/engine/rng.js';
import { makeWorkload, randomTokens, type BenchRequest } from './engine-workload.js';

export interface SharedPromptSpec {
  users: number;
  /** Tokens of the system prompt every user sends first (BOS included). */
  systemTokens: number;
  questionTokens: number;
  outputTokens: number;
  /** Arrivals are uniform over [0, arrivalWindowS) seconds. */
  arrivalWindowS: number;
  seed: number;
}

/** One shared system prompt, then a distinct question per user; sorted by arrival. */
export function sharedPromptWorkload(spec: SharedPromptSpec, vocabSize: number, bos: number): BenchRequest[] {
  const rng = new Rng(spec.seed);
  const system = [bos, ...randomTokens(rng, spec.systemTokens - 1, vocabSize)];
  return Array.from({ length: spec.users }, () => ({
    at: rng.next() * spec.arrivalWindowS,
    prompt: [...system, ...randomTokens(rng, spec.questionTokens, vocabSize)],
    maxTokens: spec.outputTokens,
  })).sort((a, b) => a.at - b.at);
}

/** Distinct prompts of one length (each starts with BOS, nothing else is shared), all arriving at t = 0. */
export function distinctPromptWorkload(users: number, promptTokens: number, outputTokens: number, seed: number, vocabSize: number, bos: number): BenchRequest[] {
  const spec = { requests: users, rate: 1, mix: 'uniform' as const, promptLen: [promptTokens, promptTokens] as [number, number], outputLen: [outputTokens, outputTokens] as [number, number], seed };
  return makeWorkload(spec, vocabSize, bos).map((r) => ({ ...r, at: 0 }));
}

export interface ChatTurn {
  /** The user's new tokens (the first turn's start with BOS). */
  user: number[];
  maxTokens: number;
}

export interface Conversation {
  /** Seconds after the start at which the first turn is sent; each later turn follows its reply at once. */
  at: number;
  turns: ChatTurn[];
}

export interface ChatSpec {
  conversations: number;
  turns: number;
  /** Most tokens a whole conversation may hold (all user turns and replies): lengths are scaled to fit. */
  budget: number;
  arrivalWindowS: number;
  seed: number;
}

export interface TraceRow {
  prefill: number;
  decode: number;
}

/** The (num_prefill_tokens, num_decode_tokens) rows of a ShareGPT length trace CSV. */
export function readLengthTrace(path: string): TraceRow[] {
  const [header, ...lines] = readFileSync(path, 'utf8').trim().split('\n');
  const cols = header!.split(',');
  const p = cols.indexOf('num_prefill_tokens');
  const d = cols.indexOf('num_decode_tokens');
  if (p < 0 || d < 0) throw new Error(`${path}: expected columns num_prefill_tokens and num_decode_tokens`);
  return lines.map((l) => {
    const f = l.split(',');
    return { prefill: Number(f[p]), decode: Number(f[d]) };
  }).filter((r) => r.prefill > 0 && r.decode > 0);
}

/**
 * Conversations whose turns take their (user, reply) lengths from rows of the trace drawn at random.
 * ShareGPT conversations run to thousands of tokens, more than a 2K context holds over several turns,
 * so each conversation's lengths are scaled by one factor (never above 1) that makes the sum of all its
 * user and reply tokens fit `budget`; user turns keep at least 4 tokens and replies at least 2.
 */
export function chatWorkload(spec: ChatSpec, trace: readonly TraceRow[], vocabSize: number, bos: number): Conversation[] {
  const rng = new Rng(spec.seed);
  const convs = Array.from({ length: spec.conversations }, () => {
    const rows = Array.from({ length: spec.turns }, () => trace[Math.floor(rng.next() * trace.length)]!);
    const total = rows.reduce((n, r) => n + r.prefill + r.decode, 0);
    const scale = Math.min(1, spec.budget / total);
    const turns = rows.map((r, i) => {
      const n = Math.max(4, Math.floor(r.prefill * scale));
      return { user: i === 0 ? [bos, ...randomTokens(rng, n - 1, vocabSize)] : randomTokens(rng, n, vocabSize), maxTokens: Math.max(2, Math.floor(r.decode * scale)) };
    });
    return { at: rng.next() * spec.arrivalWindowS, turns };
  });
  return convs.sort((a, b) => a.at - b.at);
}
