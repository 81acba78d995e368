// The engine's synchronous core, as the worker thread runs it: requests come in, each step() plans one
// token-packed batch with the scheduler, runs the model once, samples every sequence that reached its
// next token, and returns the deltas. Nothing here waits on anything, so tests can drive it step by step.
import { forwardInSlotChunks } from './forward-in-slot-chunks.js';
import type { TransformerModel } from '../model/transformer.js';
import { boundedCompletionBudget, Completion, completionBudget, type GenerateDelta, type GenerationTokenizer, type RequestParams } from './completion.js';
import type { EngineKV } from './engine-kv.js';
import { MAX_CHOICES, type ChatMessage, type EngineDelta, type EngineFinishReason, type EngineInput, type EngineStats, type StepStats } from './engine-types.js';
import { packBatch } from './batch-packer.js';
import { checkRequestParamKeys } from './option-keys.js';
import { describeError as describe, RequestFaultError, type ErrorDescription } from './error-kind.js';
import type { Scheduler, StepPlan } from './scheduler.js';
import { Sequence } from './sequence.js';
import { resolveEviction, type EvictionRequest, type SequenceEviction } from './kv-eviction.js';
import { DEFAULT_BLEND, resolveBlend, type BlendSettings, type ChunkJob, type SequenceBlend } from './blend.js';

/** Turns chat messages into prompt tokens (the model's chat template). */
export type ChatRenderer = (messages: readonly ChatMessage[]) => number[];

/** What the core reports for one request: a delta, or a failure (the request is gone). */
export interface EngineEvent {
  id: number;
  delta?: EngineDelta;
  error?: ErrorDescription;
}

/** One request: its n choices. Choice 0 runs from the start; the others fork from it once its prompt is in the cache. */
interface Request {
  prompt: readonly number[];
  params: RequestParams;
  maxTokens: number;
  /** Sequence of each choice; undefined until forked. */
  choices: (Sequence | undefined)[];
  /** Choices not finished yet. */
  live: Set<number>;
  /** The KV policy every choice runs under. */
  eviction: SequenceEviction | undefined;
  /** Its documents blended from the chunk store. */
  blend: SequenceBlend | undefined;
}

export class EngineCore {
  private readonly requests = new Map<number, Request>();
  private readonly counters: StepStats = {
    steps: 0, lastTokens: 0, lastDecodeTokens: 0, lastPrefillTokens: 0, lastSeqs: 0, lastMs: 0, totalTokens: 0, totalMs: 0, decodeOnlySteps: 0, decodeOnlyTokens: 0, decodeOnlyMs: 0, preemptions: 0,
  };

  constructor(
    readonly model: TransformerModel,
    readonly tokenizer: GenerationTokenizer,
    readonly kv: EngineKV,
    readonly scheduler: Scheduler,
    private readonly chat?: ChatRenderer,
    /** kvPolicy / kvBudget of requests that name none. */
    private readonly evictionDefaults: EvictionRequest = {},
    private readonly blendSettings: BlendSettings = DEFAULT_BLEND,
  ) {
    // A resolved tier lookup makes its sequence runnable: the next step is not idle.
    kv.onLoaded = () => {
      this.lastStepIdle = false;
      this.onRunnable?.();
    };
    if (kv.blend) kv.blend.onChunkMissing = (job) => this.startChunkJob(job);
  }

  /** Document tokens recomputed by blended prompts so far (the rest of their documents was reused). */
  blendRecomputedTokens = 0;

  /** Queues the internal sequence that computes a document for the chunk store, ahead of the requests. */
  private startChunkJob(job: ChunkJob): void {
    const seq = new Sequence(-1, [...job.chunk.context, ...job.chunk.tokens], new Completion(this.tokenizer, {}, 0), job.chunk.salt);
    seq.chunkJob = job;
    seq.publishLimit = job.chunk.context.length;
    this.scheduler.waiting.unshift(seq);
  }

  get hasWork(): boolean {
    return this.scheduler.hasWork;
  }

  /**
   * Whether another step now would do nothing: the last one found no work, and what waits is waiting on
   * KV tier lookups (the step loop sleeps until onRunnable instead of spinning).
   */
  get waitingOnLoads(): boolean {
    return this.lastStepIdle && (this.kv.loadsInFlight?.() ?? 0) > 0;
  }
  private lastStepIdle = false;
  /** Called when a sequence that waited on a tier lookup can run (the step loop queues a step). */
  onRunnable: (() => void) | undefined;

  /** Queues a request. Invalid input or parameters fail it at once (an error event); nothing is held. */
  submit(id: number, input: EngineInput, params: RequestParams = {}): EngineEvent[] {
    this.lastStepIdle = false;
    try {
      if (this.requests.has(id)) throw new RangeError(`request id ${id} is already in use`);
      checkRequestParamKeys(params);
      const n = params.n ?? 1;
      if (!(Number.isInteger(n) && n >= 1 && n <= MAX_CHOICES)) throw new RequestFaultError(`n must be an integer from 1 to ${MAX_CHOICES}, got ${String(n)}`, 'invalid_value', 'n');
      this.checkLogitBias(params.logitBias);
      const prompt = this.tokenize(input);
      const eviction = this.eviction(params, prompt.length);
      const blend = this.blend(params, prompt, eviction !== undefined);
      const budget = eviction?.bounded ? boundedCompletionBudget : completionBudget;
      const maxTokens = budget(prompt.length, this.kv.maxContext, params.maxTokens);
      const request: Request = { prompt, params, maxTokens, choices: new Array(n).fill(undefined), live: new Set(Array.from({ length: n }, (_, i) => i)), eviction, blend };
      const seq = this.choiceSequence(id, request, 0);
      if (maxTokens === 0) return request.choices.map((_, i) => ({ id, delta: this.finalDelta(i === 0 ? seq : this.choiceSequence(id, request, i), 'length', undefined) }));
      request.choices[0] = seq;
      this.requests.set(id, request);
      this.scheduler.add(seq);
      return [];
    } catch (e) {
      return [{ id, error: describe(e) }];
    }
  }

  /** Ends a request wherever it is (queued, mid-prefill, decoding), freeing all its KV: one final delta per open choice. */
  abort(id: number): EngineEvent[] {
    const request = this.requests.get(id);
    if (!request) return [];
    return [...request.live].map((choice) => {
      const seq = request.choices[choice] ?? this.choiceSequence(id, request, choice);
      return { id, delta: this.finish(seq, 'abort') };
    });
  }

  /** Runs one step; returns the deltas it produced. */
  step(): EngineEvent[] {
    const plan = this.scheduler.plan();
    this.counters.preemptions += plan.preempted.length;
    const failed = plan.failed.flatMap(({ seq, error }) => this.fail(seq, error));
    this.lastStepIdle = plan.work.length === 0;
    if (plan.work.length === 0) return failed;
    const t0 = performance.now();
    const { batch, sampling } = packBatch(plan.work, { blendLayer: this.blendSettings.layer, blendStages: this.blendSettings.stages });
    let logits: Float32Array;
    try {
      this.kv.apply(plan.kv);
      const scores = this.kv.eviction?.votes(plan.work);
      const layerRows = this.kv.eviction?.layerRows(plan.work, batch.rows!);
      logits = forwardInSlotChunks(this.model, { ...batch, ...(scores ? { scores } : {}), ...(layerRows ? { layerRows } : {}) }, this.kv.view);
    } catch (e) {
      // A failed step fails the requests in it; the engine itself carries on.
      return [...failed, ...plan.work.flatMap(({ seq }) => this.fail(seq, e))];
    }
    this.count(plan, performance.now() - t0);
    this.blendRecomputedTokens += batch.blend?.recomputed ?? 0;
    for (const w of plan.work) {
      w.seq.advance(w.count);
      // Blocks are published before a prompt-time policy compresses the prompt: the cache keeps them whole.
      this.kv.publish(w.seq);
      this.kv.eviction?.afterStep(w.seq, w.count);
      if (w.seq.chunkJob && w.seq.pending === 0) {
        this.kv.storeChunk?.(w.seq);
        this.scheduler.remove(w.seq);
      }
    }

    const events: EngineEvent[] = failed;
    const vocab = this.model.config.vocabSize;
    const now = performance.now();
    sampling.forEach(({ seq }, row) => {
      const rowLogits = logits.subarray(row * vocab, (row + 1) * vocab);
      // The other choices of a request start from this one's prompt once it is computed, sampling the same logits.
      const forks = seq.completion.generated.length === 0 ? this.fork(seq) : [];
      for (const s of [seq, ...forks]) {
        if (s.status === 'running') this.sample(s, rowLogits, now, events);
      }
    });
    return events;
  }

  private sample(seq: Sequence, logits: Float32Array, now: number, events: EngineEvent[]): void {
    if (!this.requests.has(seq.id)) return;
    try {
      const delta = seq.completion.accept(logits);
      if (delta) seq.markToken(now);
      const reason = seq.completion.finishReason;
      if (reason) events.push({ id: seq.id, delta: this.finish(seq, reason, delta) });
      else if (delta) events.push({ id: seq.id, delta: { ...delta, index: seq.choice } });
    } catch (e) {
      events.push(...this.fail(seq, e));
    }
  }

  /**
   * Starts the request's other choices from `first`'s KV (shared pages, see EngineKV.fork). A choice that
   * gets no slot or page now waits in the queue instead, where the prefix cache still serves its prompt.
   */
  private fork(first: Sequence): Sequence[] {
    const request = this.requests.get(first.id);
    if (!request || first.choice !== 0) return [];
    const started: Sequence[] = [];
    for (let i = 1; i < request.choices.length; i++) {
      if (request.choices[i] || !request.live.has(i)) continue;
      const child = this.choiceSequence(first.id, request, i);
      request.choices[i] = child;
      if (this.kv.fork(first, child)) {
        this.scheduler.addRunning(child);
        started.push(child);
      } else {
        this.scheduler.add(child);
      }
    }
    return started;
  }

  /** Choice i of a request: its own completion, and its own random stream (seed + i when seeded). */
  private choiceSequence(id: number, request: Request, i: number): Sequence {
    const p = request.params;
    const params = i === 0 || p.seed === undefined ? p : { ...p, seed: p.seed + i };
    const eviction = request.eviction && { ...request.eviction };
    const seq = new Sequence(id, request.prompt, new Completion(this.tokenizer, params, request.maxTokens), p.cacheSalt, i, eviction);
    if (request.blend) {
      seq.blend = request.blend;
      seq.publishLimit = request.blend.documents[0]!.start;
    }
    return seq;
  }

  /** The request's documents to blend, checked against this cache; undefined when it has none. */
  private blend(params: RequestParams, prompt: readonly number[], evicts: boolean): SequenceBlend | undefined {
    const store = this.kv.blend?.store;
    const blend = resolveBlend(params, prompt, this.blendSettings, (chunk) => store?.keys(chunk) ?? []);
    if (!blend) return undefined;
    if (!store) {
      throw new RequestFaultError('this engine cannot blend documents: it needs the prefix cache on and a KV cache without a residual window (not KIVI)', 'invalid_value', 'blend');
    }
    if (evicts) throw new RequestFaultError('documents cannot be blended into a cache that evicts tokens; send kv_policy "none" or no documents', 'invalid_value', 'kv_policy');
    if (this.kv.maxSlots < 2) throw new RequestFaultError('blending documents needs a second KV slot to read stored chunks through (maxSeqs of at least 2)', 'invalid_value', 'blend');
    return blend;
  }

  /** The request's KV policy (its own, else the engine's default), checked against this cache. */
  private eviction(params: RequestParams, promptTokens: number): SequenceEviction | undefined {
    const d = this.evictionDefaults;
    const req: EvictionRequest = { policy: (params.kvPolicy ?? d.policy) as EvictionRequest['policy'], budget: params.kvBudget ?? d.budget };
    const e = resolveEviction(req, promptTokens, this.kv.maxContext);
    if (e && !this.kv.eviction) {
      throw new RequestFaultError(`this server's KV cache (${this.kv.view.keyFormat.name}/${this.kv.view.valueFormat.name} with a residual window) cannot evict tokens; send kv_policy "none"`, 'invalid_value', 'kv_policy');
    }
    const window = this.model.config.slidingWindow;
    if (e && window !== undefined) {
      throw new RequestFaultError(`this model attends through a sliding window of ${window} positions, which evicted caches cannot keep; send kv_policy "none"`, 'invalid_value', 'kv_policy');
    }
    return e;
  }

  stats(): EngineStats {
    const tiers = this.kv.tierStats?.();
    return {
      running: this.scheduler.running.length,
      waiting: this.scheduler.waiting.length,
      step: { ...this.counters },
      kv: this.kv.stats(),
      prefixCache: this.kv.prefixStats(),
      ...(this.kv.blend ? { blend: { ...this.kv.blend.stats, tokensRecomputed: this.blendRecomputedTokens } } : {}),
      ...(tiers ? { tiers } : {}),
      ...(this.kv.eviction ? { eviction: { ...this.kv.eviction.stats } } : {}),
      requests: [...this.requests.values()].flatMap((r) => r.choices.filter((s) => s !== undefined).map((s) => s.timings())),
    };
  }

  /** Aborts everything and releases the KV cache; `closed` settles once the tiers took what was queued for them. */
  close(): { events: EngineEvent[]; closed: Promise<void> } {
    const events = [...this.requests.keys()].flatMap((id) => this.abort(id));
    return { events, closed: Promise.resolve(this.kv.close()) };
  }

  /** logit_bias names token ids; one outside the vocabulary is the request's error, not a silent no-op. */
  private checkLogitBias(bias: RequestParams['logitBias']): void {
    if (bias === undefined || typeof bias !== 'object' || bias === null) return;
    const vocab = this.model.config.vocabSize;
    for (const id of Object.keys(bias)) {
      if (!(/^\d+$/.test(id) && Number(id) < vocab)) throw new RequestFaultError(`logit_bias names token ${id}, outside the vocabulary (0..${vocab - 1})`, 'invalid_value', 'logit_bias');
    }
  }

  private tokenize(input: EngineInput): number[] {
    if (typeof input === 'string') return this.tokenizer.encode(input, { addSpecial: true });
    if (!Array.isArray(input)) throw new RequestFaultError('input must be a string, an array of token ids, or an array of chat messages', 'invalid_type', 'prompt');
    if (input.every((t) => typeof t === 'number')) {
      const vocab = this.model.config.vocabSize;
      const bad = input.find((t) => !(Number.isInteger(t) && t >= 0 && t < vocab));
      if (bad !== undefined) throw new RequestFaultError(`token id ${String(bad)} is outside the vocabulary (0..${vocab - 1})`, 'invalid_value', 'prompt');
      return [...(input as readonly number[])];
    }
    const messages = input as readonly ChatMessage[];
    if (!messages.every((m) => typeof m === 'object' && m !== null && typeof m.role === 'string' && typeof m.content === 'string')) {
      throw new RequestFaultError('chat messages must each be { role: string, content: string }', 'invalid_type', 'prompt');
    }
    if (!this.chat) throw new RequestFaultError('this engine has no chat template; send text or token ids', 'invalid_value', 'prompt');
    return this.chat(messages);
  }

  private finish(seq: Sequence, reason: EngineFinishReason, last?: GenerateDelta): EngineDelta {
    const tail = reason === 'abort' ? undefined : seq.completion.close(reason);
    this.scheduler.remove(seq);
    const request = this.requests.get(seq.id);
    request?.live.delete(seq.choice);
    if (request?.live.size === 0) this.requests.delete(seq.id);
    const merged = last && tail ? joinDeltas(last, tail) : (last ?? tail);
    return this.finalDelta(seq, reason === 'abort' ? 'abort' : (seq.completion.finishReason ?? reason), merged);
  }

  private finalDelta(seq: Sequence, reason: EngineFinishReason, last: GenerateDelta | undefined): EngineDelta {
    const completionTokens = seq.completion.generated.length;
    return {
      text: last?.text ?? '',
      tokens: last?.tokens ?? [],
      ...(last?.logprobs ? { logprobs: last.logprobs } : {}),
      ...(seq.choice > 0 ? { index: seq.choice } : {}),
      finish_reason: reason,
      usage: {
        prompt_tokens: seq.prompt.length,
        completion_tokens: completionTokens,
        total_tokens: seq.prompt.length + completionTokens,
        prompt_tokens_details: { cached_tokens: seq.cachedTokens },
        ...(seq.eviction ? { kv_eviction: { policy: seq.eviction.name, budget: seq.eviction.budget, evicted_tokens: seq.evictedTokens } } : {}),
      },
      timings: seq.timings(),
    };
  }

  /** Fails the whole request `seq` belongs to (every choice leaves the engine); nothing if it is already gone. */
  private fail(seq: Sequence, e: unknown): EngineEvent[] {
    // A chunk job belongs to no request: it leaves, and a request that needs its document starts another.
    if (seq.chunkJob) {
      this.scheduler.remove(seq);
      return [];
    }
    const request = this.requests.get(seq.id);
    if (!request) return [];
    for (const s of request.choices) if (s) this.scheduler.remove(s);
    this.requests.delete(seq.id);
    return [{ id: seq.id, error: describe(e) }];
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
    if (decode === tokens) {
      c.decodeOnlySteps++;
      c.decodeOnlyTokens += tokens;
      c.decodeOnlyMs += ms;
    }
  }
}

/** The last sampled token's delta followed by the text and logprobs the completion held back. */
function joinDeltas(last: GenerateDelta, tail: GenerateDelta): GenerateDelta {
  const logprobs = [...(last.logprobs ?? []), ...(tail.logprobs ?? [])];
  return { ...last, text: last.text + tail.text, ...(logprobs.length > 0 || last.logprobs ? { logprobs } : {}) };
}
