// EngineKV over the KV-cache managers of src/kv, with the prefix cache on top. Pages are mapped while the
// scheduler plans a step (only when a sequence crosses a page boundary, so most steps map nothing), and
// apply() records every planned sequence's new length with one step() call before the model writes the
// tokens. When the pool runs dry, cached blocks no sequence uses are given back, least recently used first.
import type { KVView } from '../backend/backend.js';
import { PagedKVManager, StaticKVManager, VirtualKVManager, type GrowResult, type KVCacheManager, type KVManagerKind, type KVStats } from '../kv/index.js';
import { PrefixIndex, type PrefixCacheStats } from '../kv/prefix-index.js';
import type { KVType } from '../kv/format.js';
import { bytesPerToken, resolveShape, splitsByHead } from '../kv/shape.js';
import type { Admission, AdmitOptions, EngineKV, GrowOutcome, KVPlan } from './engine-kv.js';
import { KVEviction, stepTokenLimit } from './kv-eviction.js';
import type { Sequence } from './sequence.js';
import { chainFingerprint } from '../kv/block-hash.js';
import { readRows, runBytes, writeRows } from '../kv/block-rows.js';
import type { KVTierStore, TierStoreStats } from '../kv/tiers/tiered-store.js';
import { ChunkStore } from '../kv/chunk-store.js';
import { ChunkPlacement, type KeyShifter } from './chunk-placement.js';

export interface KVGeometry {
  nLayers: number;
  kvHeads: number;
  headDim: number;
  maxSlots: number;
  maxContext: number;
  /** Formats of K and V (default f16). */
  kvType?: KVType;
  /** Newest tokens kept f16 before they are encoded (default: 128 with KIVI formats, else 0). */
  residual?: number;
  /** Store K and V Walsh-Hadamard rotated (default false). */
  rotate?: boolean;
}

export interface ManagedKVOptions {
  kind: KVManagerKind;
  /** Pool budget in bytes (default: every slot at full context). */
  kvMemory?: number;
  /** Virtual: bytes per page (default: chosen from the budget). */
  pageSize?: number;
  /** Paged: tokens per block (default 16). */
  blockSize?: number;
  /** Keep computed blocks for later requests that start with the same tokens (default true). */
  prefixCache?: boolean;
  /** Identifies the model and cache format in the prefix cache's keys. */
  fingerprint?: string;
  /**
   * Tiers below the pool (disk, Redis): blocks are written through as they fill, and a prompt's blocks
   * past the pool's hits are looked up there before they are computed. Called once with the prefix
   * cache's fingerprint and the bytes of one block; needs the prefix cache.
   */
  tiers?: (fingerprint: string, blockBytes: number) => KVTierStore;
  /**
   * Re-rotates stored keys by a position delta (the model's RoPE): with it, and a prefix cache without a
   * residual window, prompts' documents can be blended from the chunk store (engine/blend.ts).
   */
  shiftKeys?: KeyShifter;
}

/** Bytes of K and V, all layers, of one token as the managers store it (in its formats). */
export function kvBytesPerToken(g: KVGeometry): number {
  return bytesPerToken(resolveShape({ layers: g.nLayers, kvHeads: g.kvHeads, headDim: g.headDim, maxSlots: g.maxSlots, maxContext: g.maxContext, type: g.kvType }));
}

export class ManagedKV implements EngineKV {
  readonly view: KVView;
  readonly prefix: PrefixIndex | undefined;
  /** Caches with a residual window (KIVI) cannot be compacted, so they have none. */
  readonly eviction: KVEviction | undefined;
  readonly tiers: KVTierStore | undefined;
  /** CacheBlend's chunk store and placements (absent without a prefix cache, or with a residual window). */
  readonly blend: ChunkPlacement | undefined;
  onLoaded: (() => void) | undefined;
  private loads = 0;
  private readonly lens: Int32Array;
  /** Per slot, tokens it stays backed for whatever the plan asks (a blended sequence's placed documents). */
  private readonly floors: Int32Array;

  private constructor(readonly manager: KVCacheManager, view: KVView, opts: ManagedKVOptions) {
    this.view = view;
    this.lens = new Int32Array(manager.shape.maxSlots);
    this.floors = new Int32Array(manager.shape.maxSlots);
    const s = manager.shape;
    if (!view.residual) {
      this.eviction = new KVEviction(
        { layers: s.layers, kvHeads: s.kvHeads, maxSlots: s.maxSlots, maxContext: s.maxContext },
        {
          // Pages it must copy (shared ones it writes into) may come from cached blocks nobody uses.
          compact: (slot, lists) => this.evictingIfShort(() => manager.compact(slot, lists)),
          freePages: () => manager.availablePages(),
          perHead: splitsByHead(s),
        },
      );
    }
    if (opts.prefixCache ?? true) {
      const fingerprint = chainFingerprint(opts.fingerprint ?? 'unnamed-model', `kv=${s.type.k},${s.type.v}/residual=${s.residual}/rotate=${s.rotate}/block=${manager.blocks.blockTokens}`);
      // Static copies cached rows outside its slots: bound them to as many tokens as the slots hold.
      const maxEntries = manager.blocks.blockPages === 0 ? Math.floor((manager.shape.maxSlots * manager.shape.maxContext) / manager.blocks.blockTokens) : Infinity;
      this.prefix = new PrefixIndex(manager.blocks, fingerprint, maxEntries);
      this.tiers = opts.tiers?.(fingerprint, runBytes(view, s.layers, manager.blocks.blockTokens));
      if (opts.shiftKeys && !view.residual) this.blend = new ChunkPlacement(manager, view, new ChunkStore(this.prefix), opts.shiftKeys);
    } else if (opts.tiers) {
      throw new RangeError('KV tiers hold the prefix cache\'s blocks: they need the prefix cache on');
    }
  }

  static create(g: KVGeometry, opts: ManagedKVOptions): ManagedKV {
    const shape = { layers: g.nLayers, kvHeads: g.kvHeads, headDim: g.headDim, maxSlots: g.maxSlots, maxContext: g.maxContext, type: g.kvType, residual: g.residual, rotate: g.rotate };
    const budgetBytes = opts.kvMemory ?? g.maxSlots * g.maxContext * kvBytesPerToken(g);
    switch (opts.kind) {
      case 'virtual': {
        const m = new VirtualKVManager({ ...shape, budgetBytes, pageSize: opts.pageSize });
        return new ManagedKV(m, m.view(), opts);
      }
      case 'paged': {
        // vLLM's layout: the model's attention walks the manager's block tables.
        const m = new PagedKVManager({ ...shape, budgetBytes, blockSize: opts.blockSize });
        return new ManagedKV(m, m.view(), opts);
      }
      case 'static': {
        // Every slot is backed for the whole context up front, so the budget decides how many slots exist.
        const slots = Math.min(g.maxSlots, Math.floor(budgetBytes / (g.maxContext * kvBytesPerToken(g))));
        if (slots < 1) throw new RangeError(`kvMemory (${budgetBytes} bytes) holds no static slot of ${g.maxContext} tokens (${g.maxContext * kvBytesPerToken(g)} bytes)`);
        const m = new StaticKVManager({ ...shape, maxSlots: slots });
        return new ManagedKV(m, m.view(), opts);
      }
    }
  }

  get kind(): KVManagerKind {
    return this.manager.kind;
  }
  get maxSlots(): number {
    return this.manager.shape.maxSlots;
  }
  get maxContext(): number {
    return this.manager.shape.maxContext;
  }

  /** Pages a fresh slot needs for `tokens` tokens. */
  pagesFor(tokens: number): number {
    return this.manager.pagesForTokens(tokens);
  }

  freePages(): number {
    return this.manager.availablePages() + (this.prefix?.unusedPages() ?? 0);
  }

  cachedPrefix(seq: Sequence): number {
    return this.prefix ? this.lookup(seq).hits.length * this.prefix.blockTokens : 0;
  }

  admit(seq: Sequence, opts: AdmitOptions, plan: KVPlan): Admission {
    const { hits, next, shareable } = this.prefix ? this.lookup(seq) : { hits: [], next: undefined, shareable: 0 };
    if (next !== undefined && this.prefix!.computingElsewhere(next, seq.key)) return { ok: false, wait: 'prefix' };
    const loaded = next !== undefined ? this.tierBlocks(seq, hits.length, shareable) : [];
    if (loaded === 'loading') return { ok: false, wait: 'loading' };
    const documents = seq.blend ? this.blend?.find(seq) : undefined;
    if (seq.blend && !documents) return { ok: false, wait: 'chunks' };
    const blocks = this.manager.blocks;
    const cached = (hits.length + loaded.length) * blocks.blockTokens;
    // A blended sequence's slot holds its documents' rows from admission on.
    const placed = seq.blend ? seq.blend.documents[seq.blend.documents.length - 1]!.end : 0;
    // A sequence bounded by eviction computes its prompt a part at a time (it may be longer than the context).
    const step = Math.min(seq.length - cached, stepTokenLimit(seq));
    const count = Math.min(step, opts.budget);
    if (count < 1 || (opts.whole && count < step)) return { ok: false, wait: 'memory' };
    // Cached blocks nobody uses count as free until this sequence pins them.
    const hitPages = hits.length * blocks.blockPages;
    const idleHitPages = hits.filter((e) => e.users === 0).length * blocks.blockPages;
    const need = this.pagesFor(Math.max(cached + count, placed)) - hitPages;
    if (need + opts.reservePages > this.freePages() - idleHitPages) return { ok: false, wait: 'memory' };
    const slot = this.manager.allocSlot();
    if (slot === null) return { ok: false, wait: 'slots' };
    const scratch = documents ? this.manager.allocSlot() : null;
    if (documents && scratch === null) {
      this.manager.freeSlot(slot);
      return { ok: false, wait: 'slots' };
    }
    if (hits.length > 0) {
      const r = this.manager.blocks.attach(slot, hits.map((e) => e.block));
      if (!r.ok) {
        this.manager.freeSlot(slot);
        return { ok: false, wait: 'refused', reason: r.reason ?? 'the KV pool refused to map the cached prefix' };
      }
      this.prefix!.pin(hits);
    }
    seq.pinned = [...hits];
    seq.publishedBlocks = hits.length;
    // Pinned before growing: making room may give back cached blocks nobody uses.
    const placement = documents && this.blend!.plan(seq, slot, scratch!, documents);
    const grown = this.grow(slot, Math.max(cached + count, placed), plan);
    if (!grown.ok) {
      if (placement) this.blend!.cancel(placement);
      this.releaseSlot(seq, slot);
      return { ok: false, wait: 'refused', reason: grown.reason };
    }
    if (placement) {
      plan.placements.push({ ...placement, seq });
      this.floors[slot] = placed;
    }
    if (loaded.length > 0) this.writeLoaded(slot, hits.length, loaded, cached + count);
    seq.tierLoad = undefined;
    plan.admitted.push({ seq, cached });
    if (this.prefix) {
      seq.claimed = seq.blockHashes.slice(hits.length);
      this.prefix.claim(seq.claimed, seq.key);
      if (seq.admittedAt === undefined) {
        // Reused documents count as cached for the client, but not as prefix-cache hits (they have their own counters).
        const reused = seq.blend?.documents.reduce((n, d, i) => n + (seq.documentsComputed.has(i) ? 0 : d.end - d.start), 0) ?? 0;
        seq.cachedTokens = Math.min(cached + reused, seq.prompt.length);
        this.prefix.countQuery(seq.prompt.length, Math.min(cached, seq.prompt.length));
      }
    }
    return { ok: true, slot, cached, count };
  }

  grow(slot: number, wanted: number, plan: KVPlan): GrowOutcome {
    const tokens = Math.max(wanted, this.floors[slot]!);
    if (this.manager.pagesNeeded(slot, tokens) > 0) {
      // The slots planned so far go in the same call: the manager may reclaim pages beyond the tokens it
      // knows a slot holds, and must not take those that this step is about to write.
      const targets = [...plan.targets, [slot, tokens] as [number, number]];
      const r = this.evictingIfShort(() => this.stepSlots(targets));
      if (!r.ok) return { ok: false, reason: r.reason ?? `the KV pool is full (${r.pagesNeeded} pages needed, ${r.pagesAvailable} free or reclaimable)` };
    }
    plan.targets.set(slot, tokens);
    return { ok: true };
  }

  apply(plan: KVPlan): void {
    if (plan.targets.size === 0) return;
    const r = this.stepSlots(plan.targets);
    // Every page was mapped by grow(); failing here means the plan and the manager disagree.
    if (!r.ok) throw new Error(`KV step needed ${r.pagesNeeded} more pages after planning (${r.pagesAvailable} available)`);
    for (const p of plan.placements.splice(0)) this.blend!.apply(p);
  }

  storeChunk(seq: Sequence): void {
    this.blend?.storeJob(seq, (attempt) => this.evictingIfShort(attempt), (slot, tokens) => this.stepSlots([[slot, tokens]]));
  }

  publish(seq: Sequence): void {
    const prefix = this.prefix;
    // After an eviction the slot's rows no longer hold the token blocks the hashes name.
    if (!prefix || seq.slot < 0 || seq.rows !== seq.computed) return;
    // Tokens still in a residual window (KIVI) are not in their blocks' pages yet.
    const full = Math.floor(Math.min(seq.computed, seq.publishLimit, this.encodedTokens(seq.slot)) / prefix.blockTokens);
    if (full <= seq.publishedBlocks) return;
    prefix.extendChain(seq.blockHashes, (i) => seq.tokenAt(i), full, seq.cacheSalt);
    for (let b = seq.publishedBlocks; b < full; b++) {
      const hash = seq.blockHashes[b]!;
      const entry = prefix.publish(hash, seq.slot, b);
      if (!entry) continue;
      seq.pinned.push(entry);
      // Written through as it fills (the copy is the step's only cost; the write is in the background).
      if (this.tiers && !this.tiers.holds(hash)) this.tiers.offer(hash, this.readBlock(seq.slot, b));
    }
    prefix.unclaim(seq.blockHashes.slice(seq.publishedBlocks, full), seq.key);
    seq.publishedBlocks = full;
  }

  /** Tokens of slot stored in the cache's pages in every layer (all of them without a residual window). */
  private encodedTokens(slot: number): number {
    const r = this.view.residual;
    if (!r) return Infinity;
    let least = Infinity;
    for (let layer = 0; layer < this.manager.shape.layers; layer++) least = Math.min(least, r.encoded(layer)[slot]!);
    return least;
  }

  fork(parent: Sequence, child: Sequence): boolean {
    const slot = this.manager.allocSlot();
    if (slot === null) return false;
    const r = this.evictingIfShort(() => this.manager.sharePrefix(parent.slot, slot, parent.rows));
    if (!r.ok) {
      this.manager.freeSlot(slot);
      return false;
    }
    child.slot = slot;
    child.computed = parent.computed;
    child.rows = parent.rows;
    child.evictedTokens = parent.evictedTokens;
    this.eviction?.forked(parent, child);
    child.cachedTokens = parent.cachedTokens;
    child.blockHashes.push(...parent.blockHashes);
    child.publishedBlocks = parent.publishedBlocks;
    child.pinned = [...parent.pinned];
    this.prefix?.pin(child.pinned);
    return true;
  }

  release(seq: Sequence, plan?: KVPlan): void {
    if (seq.slot >= 0) {
      plan?.targets.delete(seq.slot);
      const placed = plan?.placements.findIndex((p) => p.slot === seq.slot) ?? -1;
      if (placed >= 0) this.blend!.cancel(plan!.placements.splice(placed, 1)[0]!);
      this.releaseSlot(seq, seq.slot);
    }
    if (seq.chunkJob) this.blend?.jobEnded(seq.chunkJob);
    seq.slot = -1;
  }

  loadsInFlight(): number {
    return this.loads;
  }

  tierStats(): TierStoreStats | undefined {
    return this.tiers?.stats();
  }

  clearPrefixCache(): number {
    return this.prefix?.clear() ?? 0;
  }

  stats(): KVStats {
    const s = this.manager.stats();
    const cachedPages = this.prefix?.unusedPages() ?? 0;
    return { ...s, cachedPages, runningPages: s.usedPages - s.idlePages - cachedPages, reclaimablePages: s.reclaimablePages + cachedPages };
  }

  prefixStats(): PrefixCacheStats | undefined {
    return this.prefix?.stats();
  }

  async close(): Promise<void> {
    this.manager.close();
    await this.tiers?.close();
  }

  /**
   * The cached blocks at the start of `seq` (never its last token: its logits are needed) and the hash
   * after them. A sequence that evicts as it grows takes none: its first eviction would copy them all.
   */
  private lookup(seq: Sequence): { hits: ReturnType<PrefixIndex['match']>; next: string | undefined; shareable: number } {
    const prefix = this.prefix!;
    const shareable = seq.eviction?.bounded ? 0 : Math.floor(Math.min(seq.length - 1, seq.publishLimit) / prefix.blockTokens);
    prefix.extendChain(seq.blockHashes, (i) => seq.tokenAt(i), shareable, seq.cacheSalt);
    const hits = prefix.match(seq.blockHashes, shareable);
    return { hits, next: hits.length < shareable ? seq.blockHashes[hits.length] : undefined, shareable };
  }

  /**
   * The blocks after the pool's `hitBlocks` hits that the tiers hold: [] without tiers or once looked up
   * and found none, 'loading' while the lookup runs (started on the first call).
   */
  private tierBlocks(seq: Sequence, hitBlocks: number, shareable: number): Uint8Array[] | 'loading' {
    if (!this.tiers) return [];
    const load = seq.tierLoad;
    if (load === undefined) {
      const started: NonNullable<Sequence['tierLoad']> = { from: hitBlocks, blocks: undefined };
      seq.tierLoad = started;
      this.loads++;
      void this.tiers.fetch(seq.blockHashes.slice(hitBlocks, shareable)).then((blocks) => {
        started.blocks = blocks;
        this.loads--;
        this.onLoaded?.();
      });
      return 'loading';
    }
    if (load.blocks === undefined) return 'loading';
    // Blocks the pool gained meanwhile come from the pool; if it lost some of its hits, the run no longer follows them.
    return hitBlocks < load.from ? [] : load.blocks.slice(hitBlocks - load.from);
  }

  private readBlock(slot: number, block: number): Uint8Array {
    const n = this.manager.blocks.blockTokens;
    return readRows(this.view, this.manager.shape.layers, { slot, first: block * n, tokens: n, held: this.manager.tokens(slot) });
  }

  /**
   * Writes loaded blocks into `slot` after its `firstBlock` attached ones; they count as encoded (KIVI).
   * grow() has backed the slot for `held` tokens (the manager records the length when the plan is applied).
   */
  private writeLoaded(slot: number, firstBlock: number, loaded: readonly Uint8Array[], held: number): void {
    const n = this.manager.blocks.blockTokens;
    loaded.forEach((bytes, i) => writeRows(this.view, this.manager.shape.layers, { slot, first: (firstBlock + i) * n, tokens: n, held }, bytes));
    this.manager.residual?.reset(slot, (firstBlock + loaded.length) * n);
  }

  private releaseSlot(seq: Sequence, slot: number): void {
    if (this.prefix) {
      this.prefix.unclaim(seq.claimed, seq.key);
      this.prefix.unpin(seq.pinned);
    }
    seq.pinned = [];
    seq.claimed = [];
    seq.publishedBlocks = 0;
    this.floors[slot] = 0;
    this.manager.freeSlot(slot);
  }

  /** Runs `attempt`; if the pool was short of pages, gives back unused cached blocks to cover it and tries once more. */
  private evictingIfShort(attempt: () => GrowResult): GrowResult {
    const r = attempt();
    if (r.ok || r.limit !== 'pages' || !this.prefix || this.prefix.unusedPages() === 0) return r;
    this.prefix.evict(r.pagesNeeded - r.pagesAvailable);
    return attempt();
  }

  private stepSlots(targets: Iterable<[slot: number, tokens: number]>): GrowResult {
    this.lens.fill(0);
    for (const [slot, tokens] of targets) this.lens[slot] = tokens;
    return this.manager.step(this.lens);
  }
}
