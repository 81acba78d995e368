// The public Engine: `await Engine.load(path, options)`, then `engine.generate(...)` from as many
// callers at once as you like. Every request goes to one worker thread that batches them into steps
// (see engine-core.ts), so the caller's event loop never waits on compute. Prompts are tokenized here,
// before they are queued (see prompt-encoder.ts), so the step loop never waits on a tokenizer either.
import { Worker } from 'node:worker_threads';
import type { RequestParams } from './completion.js';
import type { FromWorker, ToWorker, WorkerInit } from './engine-messages.js';
import { emptyUsage, type EngineDelta, type EngineInfo, type EngineInput, type EngineOptions, type EngineStats } from './engine-types.js';
import { checkRequestParamKeys } from './option-keys.js';
import { parseEngineConfig } from '../config/engine-config.js';
import { RequestStream } from './request-stream.js';
import { EngineClosedError, RequestFaultError } from './error-kind.js';
import { rebuildError } from './error-classes.js';
import { ChatTemplate } from '../model/chat-template.js';
import { toolCallConvention } from '../model/tool-call-convention.js';
import { GGUFFile } from '../model/gguf/reader.js';
import { createTokenizer } from '../model/tokenizer/index.js';
import { PromptEncoder, type EncodedPrompt } from './prompt-encoder.js';
import { boundsContext } from './kv-eviction.js';
import { BlockWatchers, type BlockListener, type BlockWatch } from './block-watchers.js';

export { EngineClosedError };

export interface GenerateCallOptions {
  /** Aborting it ends the request (finish_reason 'abort') and frees its KV. */
  signal?: AbortSignal;
}

/** generate()'s parameters; `signal` may come here or in the third argument. */
export type GenerateParams = RequestParams & GenerateCallOptions;

/** What Engine.load reports while it loads (callbacks stay on this thread, apart from the options). */
export interface LoadWatch {
  /** Bytes of weights readied for the kernels so far, of the total; called about once per percent. */
  onProgress?: (done: number, total: number) => void;
}

export class Engine {
  private readonly streams = new Map<number, RequestStream>();
  private readonly statsWaiters = new Map<number, { resolve: (s: EngineStats) => void; reject: (e: Error) => void }>();
  private readonly blockWatchers = new BlockWatchers((ticket) => this.post({ type: 'blocks-snapshot', ticket }));
  private nextId = 1;
  private nextTicket = 1;
  private closing: Promise<void> | undefined;
  private closedResolve: (() => void) | undefined;
  private exited = false;

  private constructor(
    private readonly worker: Worker,
    readonly info: EngineInfo,
    private readonly prompts: PromptEncoder,
    /** The engine's kvPolicy, which requests that name none run under. */
    private readonly defaultPolicy: string | undefined,
  ) {
    worker.on('message', (m: FromWorker) => this.onMessage(m));
    worker.on('error', (e) => this.failAll(e));
    worker.on('exit', () => {
      this.exited = true;
      this.failAll(new EngineClosedError('the engine has stopped'));
      this.closedResolve?.();
    });
  }

  /** Starts the worker, loads the model there and sets up the KV cache; resolves when it can take requests. */
  static async load(modelPath: string, options: EngineOptions = {}, watch: LoadWatch = {}): Promise<Engine> {
    // Checked here as well as in the worker: a bad option fails before a worker starts.
    const { blendSeparator } = parseEngineConfig(options);
    const init: WorkerInit = { modelPath, options };
    const worker = new Worker(new URL('./engine-worker.js', import.meta.url), { workerData: init });
    let onMessage: (m: FromWorker) => void = () => {};
    let onError: (e: Error) => void = () => {};
    let onExit: (code: number) => void = () => {};
    const info = await new Promise<EngineInfo>((resolve, reject) => {
      onMessage = (m) => {
        if (m.type === 'load-progress') watch.onProgress?.(m.done, m.total);
        else if (m.type === 'ready') resolve(m.info);
        else if (m.type === 'load-error') reject(rebuildError(m.error));
      };
      onError = reject;
      onExit = (code) => reject(new EngineClosedError(`the engine worker exited (code ${code}) while loading ${modelPath}`));
      worker.on('message', onMessage).on('error', onError).on('exit', onExit);
    }).catch(async (e: unknown) => {
      await worker.terminate();
      throw e;
    });
    // Only our own listeners: removeAllListeners would also drop the ones that keep the port running.
    worker.off('message', onMessage).off('error', onError).off('exit', onExit);
    // The worker has validated the file; this thread reads only its tokenizer and chat template.
    const file = GGUFFile.open(modelPath);
    try {
      const template = ChatTemplate.fromGGUF(file);
      const toolCalls = toolCallConvention(template.source);
      return new Engine(worker, toolCalls ? { ...info, toolCalls } : info, new PromptEncoder(createTokenizer(file), template, info.maxContext, blendSeparator), options.kvPolicy);
    } finally {
      file.close();
    }
  }

  /**
   * Starts a request and returns its stream of deltas; the last one carries finish_reason ('stop',
   * 'length' or 'abort') and usage. Invalid input or parameters make the stream throw.
   */
  generate(input: EngineInput, params: GenerateParams = {}, opts: GenerateCallOptions = {}): RequestStream {
    const id = this.nextId++;
    const { signal: paramSignal, ...request } = params ?? {};
    try {
      checkRequestParamKeys(request);
    } catch (e) {
      const stream = new RequestStream(id, () => {});
      stream.fail(e as Error);
      return stream;
    }
    params = request;
    const choices = Number.isInteger(params.n) && params.n! > 1 ? params.n! : 1;
    const stream = new RequestStream(id, (abandoned) => this.abort(abandoned), choices);
    if (this.closing || this.exited) {
      stream.fail(new EngineClosedError('the engine is closed'));
      return stream;
    }
    let prompt: EncodedPrompt;
    try {
      prompt = this.prompts.encode(input, { bounded: boundsContext(params.kvPolicy ?? this.defaultPolicy), blend: params.blend, tools: params.tools });
      params = withDocuments(input, params, prompt);
    } catch (e) {
      stream.fail(e instanceof Error ? e : new Error(String(e)));
      return stream;
    }
    this.streams.set(id, stream);
    const signal = opts.signal ?? paramSignal;
    if (signal) {
      if (signal.aborted) {
        for (let i = 0; i < choices; i++) stream.push({ ...abortedBeforeStart(), ...(i > 0 ? { index: i } : {}) });
        this.streams.delete(id);
        return stream;
      }
      const onAbort = () => this.abort(id);
      signal.addEventListener('abort', onAbort, { once: true });
      stream.onEnd = () => signal.removeEventListener('abort', onAbort);
    }
    this.post({ type: 'submit', id, input: prompt.tokens, params });
    return stream;
  }

  /** Aborts a request by id (the stream's `id`); its last delta has finish_reason 'abort'. */
  abort(id: number): void {
    if (this.streams.has(id) && !this.exited) this.post({ type: 'abort', id });
  }

  /** Running and waiting counts, step figures, the KV pool and per-request timings, from the worker. */
  async stats(): Promise<EngineStats> {
    if (this.closing || this.exited) throw new EngineClosedError('the engine is closed');
    const ticket = this.nextTicket++;
    return new Promise((resolve, reject) => {
      this.statsWaiters.set(ticket, { resolve, reject });
      this.post({ type: 'stats', ticket });
    });
  }

  /**
   * Mirrors the prefix cache: resolves with the keys cached now (and the chain's parameters), then calls
   * `listener` with every batch of blocks stored and removed after them until stop() (or until the engine
   * stops: then `onEnd`). Undefined when the engine runs without a prefix cache.
   */
  async watchBlocks(listener: BlockListener, onEnd?: (e: Error) => void): Promise<BlockWatch | undefined> {
    if (this.closing || this.exited) throw new EngineClosedError('the engine is closed');
    return this.blockWatchers.watch(listener, onEnd);
  }

  /** Aborts every request, frees the KV cache and the model, and stops the worker. */
  close(): Promise<void> {
    if (this.exited) return Promise.resolve();
    this.closing ??= new Promise<void>((resolve) => {
      this.closedResolve = resolve;
      this.post({ type: 'close' });
    });
    return this.closing;
  }

  private post(m: ToWorker): void {
    this.worker.postMessage(m);
  }

  private onMessage(m: FromWorker): void {
    switch (m.type) {
      case 'events':
        for (const e of m.events) {
          const stream = this.streams.get(e.id);
          if (!stream) continue;
          if (e.error) stream.fail(rebuildError(e.error));
          else if (e.delta) stream.push(e.delta);
          if (stream.done) this.streams.delete(e.id);
        }
        break;
      case 'stats':
        this.statsWaiters.get(m.ticket)?.resolve(m.stats);
        this.statsWaiters.delete(m.ticket);
        break;
      case 'blocks':
        this.blockWatchers.events({ stored: m.stored, removed: m.removed });
        break;
      case 'blocks-snapshot':
        this.blockWatchers.snapshot(m.ticket, m.snapshot);
        break;
      case 'closed':
        void this.worker.terminate();
        break;
    }
  }

  private failAll(e: Error): void {
    for (const s of this.streams.values()) s.fail(e);
    this.streams.clear();
    for (const w of this.statsWaiters.values()) w.reject(e);
    this.statsWaiters.clear();
    this.blockWatchers.failAll(e);
  }
}

/**
 * The request's parameters with the documents its prompt marks. Ranges come from the marks, so a caller
 * may give `documents` only with token ids. Chat document parts turn blending on unless `blend` is false.
 */
function withDocuments(input: EngineInput, params: RequestParams, prompt: EncodedPrompt): RequestParams {
  const tokenIds = Array.isArray(input) && input.every((t) => typeof t === 'number');
  if (params.documents !== undefined && !tokenIds) {
    throw new RequestFaultError('documents are found from the prompt\'s marks (the blend separator, or chat parts with document: true); give ranges only with a prompt of token ids', 'invalid_value', 'documents');
  }
  return prompt.documents ? { ...params, documents: prompt.documents, blend: params.blend ?? true } : params;
}

function abortedBeforeStart(): EngineDelta {
  return { text: '', tokens: [], finish_reason: 'abort', usage: emptyUsage() };
}
