// What the single-sequence benchmark asks of an engine (vserve or a peer): evaluate a prompt from an
// empty context, then decode greedily, timing each part.

export interface RunTimings {
  /** From submitting the prompt to having the first generated token (prefill + last-row logits + sampling). */
  prefillMs: number;
  /** Each later generated token's time (one single-token forward + sampling). */
  decodeMs: number[];
}

export interface SingleSequenceEngine {
  /** Short, stable label for tables, e.g. "llama.cpp t=2". */
  readonly label: string;
  /** Configuration worth recording (threads, versions, backend). */
  readonly details: Record<string, string | number>;
  /** Clears the context, evaluates `prompt` in one batch, then generates `generate` tokens greedily. */
  run(prompt: readonly number[], generate: number): Promise<RunTimings>;
  close(): Promise<void>;
}
