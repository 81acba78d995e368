// The KV side of CacheBlend (engine/blend.ts): finding a blended prompt's documents in the chunk store,
// copying each one's rows into the sequence's slot at the document's position with its keys re-rotated by
// the position delta, and storing what a chunk job computed.
//
// A stored chunk's blocks are read through a scratch slot they are attached to (the managers share cached
// blocks only as a slot's first blocks), then written into the sequence's slot: a copy, since every
// placement needs its own rotation of the keys.
import type { KVView } from '../backend/backend.js';
import { readRows, writeRows } from '../kv/block-rows.js';
import type { ChunkStore } from '../kv/chunk-store.js';
import type { GrowResult, KVCacheManager } from '../kv/manager.js';
import type { CacheEntry } from '../kv/prefix-index.js';
import type { BlendDocument, ChunkJob } from './blend.js';
import type { Sequence } from './sequence.js';

/** Rotates the stored keys of rows first .. first + count - 1 of `slot` by `delta` positions, in every layer. */
export type KeyShifter = (view: KVView, slot: number, first: number, count: number, delta: number) => void;

/** One document's copy, planned at admission and made when the step's plan is applied. */
export interface DocumentPlacement {
  doc: BlendDocument;
  /** The chunk's blocks, pinned until the copy is made. */
  entries: CacheEntry[];
}

/** The placements of one admitted sequence. */
export interface SlotPlacement {
  slot: number;
  /** A free slot held for reading the stored blocks through (freed once the copies are made). */
  scratch: number;
  documents: DocumentPlacement[];
}

export interface BlendStats {
  /** Documents placed from the store, and their tokens. */
  documentsReused: number;
  tokensReused: number;
  /** Chunk jobs started (documents the store lacked). */
  chunkJobs: number;
}

export class ChunkPlacement {
  /** Chunk jobs not finished yet, by the key of the chunk's last block (which covers all of it). */
  private readonly jobs = new Set<string>();
  readonly stats: BlendStats = { documentsReused: 0, tokensReused: 0, chunkJobs: 0 };
  /** Set by the engine core: starts a chunk job. */
  onChunkMissing: ((job: ChunkJob) => void) | undefined;

  constructor(
    private readonly manager: KVCacheManager,
    private readonly view: KVView,
    readonly store: ChunkStore,
    private readonly shiftKeys: KeyShifter,
  ) {}

  /**
   * The stored blocks of each of the sequence's documents; or undefined when some are missing, in which
   * case a chunk job is started for each missing one that none is computing yet.
   */
  find(seq: Sequence): CacheEntry[][] | undefined {
    const found: CacheEntry[][] = [];
    let missing = false;
    for (const [i, doc] of seq.blend!.documents.entries()) {
      const entries = this.store.lookup(doc.keys);
      if (entries) {
        found.push(entries);
        continue;
      }
      missing = true;
      seq.documentsComputed.add(i);
      const id = doc.keys[doc.keys.length - 1]!;
      if (this.jobs.has(id)) continue;
      this.jobs.add(id);
      this.stats.chunkJobs++;
      this.onChunkMissing?.({ chunk: doc.chunk, keys: doc.keys });
    }
    return missing ? undefined : found;
  }

  /** Plans copying the found documents into `slot` (pinning their blocks until then). */
  plan(seq: Sequence, slot: number, scratch: number, found: CacheEntry[][]): SlotPlacement {
    found.forEach((entries) => this.store.pin(entries));
    return { slot, scratch, documents: seq.blend!.documents.map((doc, i) => ({ doc, entries: found[i]! })) };
  }

  /** Gives up a planned placement that will not be applied (its sequence left the plan). */
  cancel(p: SlotPlacement): void {
    for (const d of p.documents) this.store.unpin(d.entries);
    this.manager.freeSlot(p.scratch);
  }

  /** Makes the copies; the slot is backed past its last document (the plan was applied). */
  apply(p: SlotPlacement): void {
    const layers = this.manager.shape.layers;
    const blockTokens = this.store.blockTokens;
    try {
      for (const { doc, entries } of p.documents) {
        const tokens = doc.end - doc.start;
        const attached = this.manager.blocks.attach(p.scratch, entries.map((e) => e.block));
        if (!attached.ok) throw new Error(`blend: the KV pool refused to map a stored chunk (${attached.reason ?? `${attached.pagesNeeded} pages needed`})`);
        let rows: Uint8Array;
        try {
          rows = readRows(this.view, layers, { slot: p.scratch, first: 0, tokens, held: entries.length * blockTokens });
        } finally {
          // Emptied for the next document (attach needs a slot holding nothing); freeing it left one free.
          this.manager.freeSlot(p.scratch);
          p.scratch = this.manager.allocSlot()!;
        }
        writeRows(this.view, layers, { slot: p.slot, first: doc.start, tokens, held: doc.end }, rows);
        this.shiftKeys(this.view, p.slot, doc.start, tokens, doc.start - doc.chunk.context.length);
        this.stats.documentsReused++;
        this.stats.tokensReused += tokens;
      }
    } finally {
      this.cancel(p);
    }
  }

  /**
   * After a chunk job computed its prompt (context then document): moves the document's rows to the front
   * of its slot, pads them to whole blocks and stores them. `run` retries a call once the prefix cache gave
   * back pages if the pool was short.
   */
  storeJob(seq: Sequence, run: (attempt: () => GrowResult) => GrowResult, grow: (slot: number, tokens: number) => GrowResult): void {
    const job = seq.chunkJob!;
    const context = job.chunk.context.length;
    const tokens = job.chunk.tokens.length;
    const keep = Int32Array.from({ length: tokens }, (_, i) => context + i);
    const moved = run(() => this.manager.compact(seq.slot, keep));
    if (!moved.ok) return;
    const padded = job.keys.length * this.store.blockTokens;
    if (padded > tokens && !run(() => grow(seq.slot, padded)).ok) return;
    this.store.store(job.keys, seq.slot);
  }

  /** A chunk job left the engine (stored, failed or aborted): its chunk may be asked for again. */
  jobEnded(job: ChunkJob): void {
    this.jobs.delete(job.keys[job.keys.length - 1]!);
  }
}
