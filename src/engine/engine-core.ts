// The engine's synchronous core, as the worker thread runs it: requests come in, each step() plans one
// token-packed batch with the scheduler, runs the model once, samples every sequence that reached its
// next token, and returns the deltas. Nothing here waits on anything, so tests can drive it step by step.
import type { LlamaModel } from '../model/llama.js';
import { Completion, completionBudget, type GenerateDelta, type GenerationTokenizer, type RequestParams } from './completion.js';
import type { EngineKV } from './engine-kv.js';
import type { ChatMessage, EngineDelta, EngineFinishReason, EngineInput, EngineStats, StepStats } from './engine-types.js';
import { packBatch } from './batch-packer.js';
import { describeError as describe, type ErrorDescription } from './error-kind.js';
import type { Scheduler, StepPlan } from './scheduler.js';
import { Sequence } from './sequence.js';

/** Turns chat messages into prompt tokens (the model's chat template). */
export type ChatRenderer = (messages: readonly ChatMessage[]) => number[];

/** What the core reports for one request: a delta, or a failure (the request is gone). */
export interface EngineEvent {
  id: number;
  delta?: EngineDelta;
  error?: ErrorDescription;
}

export class EngineCore {
  private readonly sequences = new Map<number, Sequence>();
  private readonly counters: StepStats = {
    steps: 0, lastTokens: 0, lastDecodeTokens: 0, lastPrefillTokens: 0, lastSeqs: 0, lastMs: 0, totalTokens: 0, totalMs: 0, preemptions: 0,
  };

  constructor(
    readonly model: LlamaModel,
    readonly tokenizer: GenerationTokenizer,
    readonly kv: EngineKV,
    readonly scheduler: Scheduler,
    private readonly chat?: ChatRenderer,
  ) {}

  get hasWork(): boolean {
    return this.scheduler.hasWork;
  }

  /** Queues a request. Invalid input or parameters fail it at once (an error event); nothing is held. */
  submit(id: number, input: EngineInput, params: RequestParams = {}): EngineEvent[] {
    try {
      if (this.sequences.has(id)) throw new RangeError(`request id ${id} is already in use`);
      const prompt = this.tokenize(input);
      const maxTokens = completionBudget(prompt.length, this.kv.maxContext, params.maxTokens);
      const seq = new Sequence(id, prompt, new Completion(this.tokenizer, params, maxTokens));
      if (maxTokens === 0) return [{ id, delta: this.finalDelta(seq, 'length', undefined) }];
      this.sequences.set(id, seq);
      this.scheduler.add(seq);
      return [];
    } catch (e) {
      return [{ id, error: describe(e) }];
    }
  }

  /** Ends a request wherever it is (queued, mid-prefill, decoding), freeing all its KV. */
  abort(id: number): EngineEvent[] {
    const seq = this.sequences.get(id);
    if (!seq) return [];
    return [{ id, delta: this.finish(seq, 'abort') }];
  }

  /** Runs one step; returns the deltas it produced. */
  step(): EngineEvent[] {
    const plan = this.scheduler.plan();
    this.counters.preemptions += plan.preempted.length;
    const failed = plan.failed.map(({ seq, error }) => this.fail(seq, error));
    if (plan.work.length === 0) return failed;
    const t0 = performance.now();
    const { batch, sampling } = packBatch(plan.work);
    let logits: Float32Array;
    try {
      this.kv.commit();
      logits = this.model.forward(batch, this.kv.view);
    } catch (e) {
      // A failed step fails the requests in it; the engine itself carries on.
      return [...failed, ...plan.work.map(({ seq }) => this.fail(seq, e))];
    }
    this.count(plan, performance.now() - t0);
    for (const w of plan.work) w.seq.computed += w.count;

    const events: EngineEvent[] = failed;
    const vocab = this.model.config.vocabSize;
    const now = performance.now();
    sampling.forEach(({ seq }, row) => {
      try {
        const delta = seq.completion.accept(logits.subarray(row * vocab, (row + 1) * vocab));
        if (delta) seq.markToken(now);
        const reason = seq.completion.finishReason;
        if (reason) events.push({ id: seq.id, delta: this.finish(seq, reason, delta) });
        else if (delta) events.push({ id: seq.id, delta });
      } catch (e) {
        events.push(this.fail(seq, e));
      }
    });
    return events;
  }

  stats(): EngineStats {
    return {
      running: this.scheduler.running.length,
      waiting: this.scheduler.waiting.length,
      step: { ...this.counters },
      kv: this.kv.stats(),
      requests: [...this.sequences.values()].map((s) => s.timings()),
    };
  }

  /** Aborts everything and releases the KV cache. */
  close(): EngineEvent[] {
    const events = [...this.sequences.keys()].flatMap((id) => this.abort(id));
    this.kv.close();
    return events;
  }

  private tokenize(input: EngineInput): number[] {
    if (typeof input === 'string') return this.tokenizer.encode(input, { addSpecial: true });
    if (!Array.isArray(input)) throw new TypeError('input must be a string, an array of token ids, or an array of chat messages');
    if (input.every((t) => typeof t === 'number')) {
      const vocab = this.model.config.vocabSize;
      const bad = input.find((t) => !(Number.isInteger(t) && t >= 0 && t < vocab));
      if (bad !== undefined) throw new RangeError(`token id ${String(bad)} is outside the vocabulary (0..${vocab - 1})`);
      return [...(input as readonly number[])];
    }
    const messages = input as readonly ChatMessage[];
    if (!messages.every((m) => typeof m === 'object' && m !== null && typeof m.role === 'string' && typeof m.content === 'string')) {
      throw new TypeError('chat messages must each be { role: string, content: string }');
    }
    if (!this.chat) throw new TypeError('this engine has no chat template; send text or token ids');
    return this.chat(messages);
  }

  private finish(seq: Sequence, reason: EngineFinishReason, last?: GenerateDelta): EngineDelta {
    const tail = reason === 'abort' ? undefined : seq.completion.close(reason);
    this.scheduler.remove(seq);
    this.sequences.delete(seq.id);
    const merged = last && tail ? { ...last, text: last.text + tail.text } : (last ?? tail);
    return this.finalDelta(seq, reason === 'abort' ? 'abort' : (seq.completion.finishReason ?? reason), merged);
  }

  private finalDelta(seq: Sequence, reason: EngineFinishReason, last: GenerateDelta | undefined): EngineDelta {
    const completionTokens = seq.completion.generated.length;
    return {
      text: last?.text ?? '',
      tokens: last?.tokens ?? [],
      ...(last?.logprobs ? { logprobs: last.logprobs } : {}),
      finish_reason: reason,
      usage: { prompt_tokens: seq.prompt.length, completion_tokens: completionTokens, total_tokens: seq.prompt.length + completionTokens },
      timings: seq.timings(),
    };
  }

  private fail(seq: Sequence, e: unknown): EngineEvent {
    this.scheduler.remove(seq);
    this.sequences.delete(seq.id);
    return { id: seq.id, error: describe(e) };
  }

  private count(plan: StepPlan, ms: number): void {
    const c = this.counters;
    let decode = 0;
    for (const { seq, count } of plan.work) {
      if (count === 1 && seq.pending === 1 && seq.completion.generated.length > 0) decode++;
    }
    const tokens = plan.work.reduce((n, w) => n + w.count, 0);
    c.steps++;
    c.lastTokens = tokens;
    c.lastDecodeTokens = decode;
    c.lastPrefillTokens = tokens - decode;
    c.lastSeqs = plan.work.length;
    c.lastMs = ms;
    c.totalTokens += tokens;
    c.totalMs += ms;
  }
}
