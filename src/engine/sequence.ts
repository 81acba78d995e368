// One request inside the engine: its prompt, what it has generated, where its KV lives, and how much
// of it the cache holds. A sequence's tokens are prompt + generated; `computed` of them have their K/V
// in the cache, and the rest (a prompt chunk, the last sampled token, or everything after a
// preemption) is what it still has to run through the model.
import type { CacheEntry } from '../kv/prefix-index.js';
import { Completion } from './completion.js';
import type { SequenceEviction } from './kv-eviction.js';
import type { ChunkJob, SequenceBlend } from './blend.js';

export type SequenceStatus = 'waiting' | 'running' | 'finished';

export interface RequestTimings {
  id: number;
  promptTokens: number;
  completionTokens: number;
  /** Milliseconds waiting before first admission. */
  queueMs: number;
  /** Milliseconds from arrival to the first generated token (undefined before it). */
  ttftMs?: number;
  /** Mean milliseconds between generated tokens. */
  meanTbtMs?: number;
  preemptions: number;
}

let nextKey = 1;

export class Sequence {
  /** Unique among all sequences (the n choices of one request share its id, not this). */
  readonly key = nextKey++;
  status: SequenceStatus = 'waiting';
  /** KV slot while running; -1 otherwise. */
  slot = -1;
  /** Tokens run through the model (their positions are taken). */
  computed = 0;
  /**
   * Rows its KV slot holds: `computed` minus the tokens evicted since admission (DESIGN.md §8.3). The
   * next token is computed at position `computed` and stored at row `rows`.
   */
  rows = 0;
  /** Tokens evicted from its cache so far. */
  evictedTokens = 0;
  /** Admission counter at the last admission: the highest is preempted first. */
  admissionOrder = -1;
  preemptions = 0;
  /** Prompt tokens found in the prefix cache at the first admission (usage.prompt_tokens_details.cached_tokens). */
  cachedTokens = 0;
  /** Prefix-cache state: hashes of the token blocks so far, the cache entries this sequence pins, the
   * blocks it claimed to compute for others, and how many of its blocks it has published. */
  readonly blockHashes: string[] = [];
  pinned: CacheEntry[] = [];
  claimed: string[] = [];
  publishedBlocks = 0;
  /**
   * A lookup in the KV tiers for the blocks after the pool's hits (which began at block `from`):
   * `blocks` is undefined while it runs, then the payloads of the run some tier held.
   */
  tierLoad: { from: number; blocks: Uint8Array[] | undefined } | undefined;
  /** Its prompt's documents, whose KV comes from the chunk store (engine/blend.ts). */
  blend: SequenceBlend | undefined;
  /** Its documents (indices) the chunk store lacked when it first asked: computed for it, so not counted as cached. */
  readonly documentsComputed = new Set<number>();
  /** Set on the internal sequences that compute a document for the chunk store: they sample nothing. */
  chunkJob: ChunkJob | undefined;
  /**
   * The prefix cache takes only blocks before this token: a blended prompt's rows past its first document
   * are not what computing its tokens would give, and a chunk job's document goes to the chunk store.
   */
  publishLimit = Infinity;
  readonly arrivedAt = performance.now();
  admittedAt: number | undefined;
  firstTokenAt: number | undefined;
  lastTokenAt: number | undefined;

  constructor(
    readonly id: number,
    readonly prompt: readonly number[],
    readonly completion: Completion,
    /** Tenant key of the prefix cache: sequences with different salts never share blocks. */
    readonly cacheSalt = '',
    /** Which of the request's n choices this is. */
    readonly choice = 0,
    /** Its KV eviction policy and budget (none: the full cache). */
    readonly eviction?: SequenceEviction,
  ) {}

  get length(): number {
    return this.prompt.length + this.completion.generated.length;
  }

  /** Tokens still to run through the model before the next token can be sampled. */
  get pending(): number {
    return this.length - this.computed;
  }

  tokenAt(i: number): number {
    const p = this.prompt.length;
    return i < p ? this.prompt[i]! : this.completion.generated[i - p]!;
  }

  /** Records that a step ran its next `count` tokens through the model, each stored in a new cache row. */
  advance(count: number): void {
    this.computed += count;
    this.rows += count;
  }

  /** Records that a token was generated now (for TTFT and time between tokens). */
  markToken(now: number): void {
    this.firstTokenAt ??= now;
    this.lastTokenAt = now;
  }

  timings(): RequestTimings {
    const n = this.completion.generated.length;
    return {
      id: this.id,
      promptTokens: this.prompt.length,
      completionTokens: n,
      queueMs: (this.admittedAt ?? performance.now()) - this.arrivedAt,
      ttftMs: this.firstTokenAt === undefined ? undefined : this.firstTokenAt - this.arrivedAt,
      meanTbtMs: n > 1 ? (this.lastTokenAt! - this.firstTokenAt!) / (n - 1) : undefined,
      preemptions: this.preemptions,
    };
  }
}
