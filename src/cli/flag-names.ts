// The library names its options and parameters (kvMemory, top_k); a CLI user typed flags. Errors that
// reach the CLI are reworded to name the flag, so the message points at what to change.

const FLAG_OF: Record<string, string> = {
  kvManager: '--kv-manager', kvMemory: '--kv-memory', pageSize: '--page-size', blockSize: '--block-size', kvType: '--kv-type', kvResidual: '--kv-residual', kvRotate: '--kv-rotate', kvPolicy: '--kv-policy', kvBudget: '--kv-budget',
  maxSeqs: '--max-seqs', maxBatchTokens: '--max-batch-tokens', maxContext: '--max-context', scheduler: '--scheduler',
  admissionOrder: '--admission', threads: '--threads', kvStore: '--kv-store', kvStoreTimeoutMs: '--kv-store-timeout', kvDisk: '--kv-disk', kvDiskBytes: '--kv-disk-size', blendSeparator: '--blend-separator', blendRecompute: '--blend-recompute', blendLayer: '--blend-layer', blendStages: '--blend-stages', blendContext: '--blend-context',
  temperature: '--temp', top_k: '--top-k', top_p: '--top-p', min_p: '--min-p', repetition_penalty: '--repeat-penalty',
  presence_penalty: '--presence-penalty', frequency_penalty: '--frequency-penalty', max_tokens: '--max-tokens', seed: '--seed',
};

const NAMES = new RegExp(`(?<![-\\w])(${Object.keys(FLAG_OF).join('|')})(?![-\\w])`, 'g');

export function withFlagNames(message: string): string {
  return message.replace(NAMES, (name) => FLAG_OF[name]!);
}
