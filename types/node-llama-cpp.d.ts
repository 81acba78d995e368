// node-llama-cpp (the benchmarks' llama.cpp peer, 669 MB) is installed only by `npm run bench:setup`, so
// the build cannot rely on its own types. The benches load it with a dynamic import and say when it is
// missing; these loose declarations let them compile either way.
declare module 'node-llama-cpp' {
  export type Llama = any;
  export type LlamaModel = any;
  export type LlamaContext = any;
  export type LlamaContextSequence = any;
  export type Token = number;
  export const getLlama: (options?: Record<string, unknown>) => Promise<Llama>;
  export const LlamaLogLevel: Record<string, any>;
  export const LlamaGrammarEvaluationState: new (options: { model: LlamaModel; grammar: any }) => any;
}
