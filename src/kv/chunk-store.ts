// The document-chunk store of CacheBlend-style reuse: the KV of a RAG document computed once on its own
// (after a fixed context, not after whatever preceded it in the request that brought it), kept so that any
// later request can place it at whatever position the document takes there.
//
// A stored chunk is a run of blocks held by the prefix cache's index, so it lives in pool pages under the
// same budget and least-recently-used order as cached prefixes. Its blocks' keys form a chain of their own:
// rooted in the model-and-format fingerprint plus a salt naming the chunk's context, over the document's
// tokens, with the last block padded so that a document's length is part of its key. Rows 0 .. tokens - 1
// of the run hold the document's K and V as computed at positions contextTokens .. contextTokens + tokens - 1.
import { createHash } from 'node:crypto';
import type { CacheEntry, PrefixIndex } from './prefix-index.js';

/** Token id that fills a chunk's last block past its end, in the key only (no vocabulary has it). */
const PAD_TOKEN = -1;

export interface ChunkRef {
  /** The document's tokens. */
  readonly tokens: readonly number[];
  /** The tokens it is computed after (its own positions start at their count). */
  readonly context: readonly number[];
  /** The prefix cache's tenant salt: chunks of different tenants are never shared either. */
  readonly salt: string;
}

export class ChunkStore {
  constructor(private readonly index: PrefixIndex) {}

  get blockTokens(): number {
    return this.index.blockTokens;
  }

  /** The keys of a chunk's blocks: ceil(tokens / blockTokens) of them. */
  keys(chunk: ChunkRef): string[] {
    const n = chunk.tokens.length;
    const blocks = Math.ceil(n / this.index.blockTokens);
    const chain: string[] = [];
    this.index.extendChain(chain, (i) => (i < n ? chunk.tokens[i]! : PAD_TOKEN), blocks, chunkSalt(chunk));
    return chain;
  }

  /** The chunk's cached blocks, in order, if every one of them is held (a chunk is used whole or not at all). */
  lookup(keys: readonly string[]): CacheEntry[] | undefined {
    const hits = this.index.match(keys);
    return hits.length < keys.length ? undefined : hits;
  }

  /**
   * Keeps blocks 0 .. keys.length - 1 of `slot` (which holds the chunk from row 0, padded to whole blocks)
   * under the chunk's keys. Blocks some other copy already holds are left as they are.
   */
  store(keys: readonly string[], slot: number): void {
    const entries = keys.flatMap((key, b) => this.index.publish(key, slot, b) ?? []);
    // Published entries start pinned by their computing sequence; a chunk has none once its slot is gone.
    this.index.unpin(entries);
  }

  pin(entries: readonly CacheEntry[]): void {
    this.index.pin(entries);
  }

  unpin(entries: readonly CacheEntry[]): void {
    this.index.unpin(entries);
  }
}

/** The chain salt of a chunk: its tenant and a digest of the context it is computed after. */
function chunkSalt(chunk: ChunkRef): string {
  const context = createHash('sha256').update(Int32Array.from(chunk.context)).digest('base64url');
  return `chunk\0${chunk.salt}\0${context}`;
}
