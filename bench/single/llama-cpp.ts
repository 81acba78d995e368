// The llama.cpp peer through node-llama-cpp: CPU only, the prebuilt binary that came with npm (never a
// build or download), and an explicit thread count — its default on a small machine oversubscribes
// the cores (DESIGN.md §6), which would make the comparison unfair.
import type { Llama, LlamaContext, LlamaContextSequence, LlamaModel, Token } from 'node-llama-cpp';
import type { RunTimings, SingleSequenceEngine } from './engine.js';

export const NODE_LLAMA_CPP_VERSION = '3.22.1';

let llamaPromise: Promise<Llama> | undefined;

/** One shared Llama instance; maxThreads 0 lets each context use exactly the threads it asks for. */
async function sharedLlama(): Promise<Llama> {
  llamaPromise ??= (async () => {
    const { getLlama, LlamaLogLevel } = await import('node-llama-cpp');
    return getLlama({ gpu: false, build: 'never', maxThreads: 0, logLevel: LlamaLogLevel.error });
  })();
  return llamaPromise;
}

export async function loadLlamaCppModel(path: string): Promise<LlamaModel> {
  const llama = await sharedLlama();
  return llama.loadModel({ modelPath: path, gpuLayers: 0 });
}

export class LlamaCppEngine implements SingleSequenceEngine {
  readonly label: string;
  readonly details: Record<string, string | number>;

  private constructor(private readonly context: LlamaContext, private readonly sequence: LlamaContextSequence, threads: number, llama: Llama) {
    this.label = `llama.cpp t=${threads}`;
    this.details = {
      engine: `llama.cpp via node-llama-cpp ${NODE_LLAMA_CPP_VERSION}`,
      llamaCppRelease: llama.llamaCppRelease.release,
      build: llama.buildType,
      threads,
    };
  }

  /** A context on `model` able to hold `contextSize` tokens and evaluate a prompt of `batchSize` in one batch. */
  static async create(model: LlamaModel, threads: number, contextSize: number, batchSize: number): Promise<LlamaCppEngine> {
    const context = await model.createContext({ contextSize, batchSize, threads: { ideal: threads, min: threads }, sequences: 1 });
    return new LlamaCppEngine(context, context.getSequence(), threads, await sharedLlama());
  }

  async run(prompt: readonly number[], generate: number): Promise<RunTimings> {
    await this.sequence.clearHistory();
    const t0 = performance.now();
    let last = t0;
    let prefillMs = 0;
    const decodeMs: number[] = [];
    let produced = 0;
    for await (const _token of this.sequence.evaluate([...prompt] as Token[], { temperature: 0 })) {
      const now = performance.now();
      if (produced === 0) prefillMs = now - t0;
      else decodeMs.push(now - last);
      last = now;
      if (++produced >= Math.max(1, generate)) break;
    }
    return { prefillMs, decodeMs };
  }

  async close(): Promise<void> {
    await this.context.dispose();
  }
}
