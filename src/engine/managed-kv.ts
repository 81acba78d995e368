// EngineKV over the KV-cache managers of src/kv. Pages are mapped while the scheduler plans a step (only
// when a sequence crosses a page boundary, so most steps map nothing), and commit() records every planned
// sequence's new length with one step() call before the model writes the tokens.
import type { KVView } from '../backend/backend.js';
import { PagedKVManager, StaticKVManager, VirtualKVManager, type GrowResult, type KVCacheManager, type KVManagerKind, type KVStats } from '../kv/index.js';
import type { EngineKV } from './engine-kv.js';

export interface KVGeometry {
  nLayers: number;
  kvHeads: number;
  headDim: number;
  maxSlots: number;
  maxContext: number;
}

export interface ManagedKVOptions {
  kind: KVManagerKind;
  /** Pool budget in bytes (default: every slot at full context). */
  kvMemory?: number;
  /** Virtual: bytes per page (default: chosen from the budget). */
  pageSize?: number;
  /** Paged: tokens per block (default 16). */
  blockSize?: number;
}

/** Bytes of K and V, all layers, of one token as the managers store it (f32). */
export function kvBytesPerToken(g: KVGeometry): number {
  return 2 * g.nLayers * g.kvHeads * g.headDim * 4;
}

export class ManagedKV implements EngineKV {
  readonly view: KVView;
  private readonly lens: Int32Array;
  /** Slot -> tokens it holds after the step being planned. */
  private readonly planned = new Map<number, number>();
  lastRefusal: string | undefined;

  private constructor(readonly manager: KVCacheManager, view: KVView) {
    this.view = view;
    this.lens = new Int32Array(manager.shape.maxSlots);
  }

  static create(g: KVGeometry, opts: ManagedKVOptions): ManagedKV {
    const shape = { layers: g.nLayers, kvHeads: g.kvHeads, headDim: g.headDim, maxSlots: g.maxSlots, maxContext: g.maxContext };
    const budgetBytes = opts.kvMemory ?? g.maxSlots * g.maxContext * kvBytesPerToken(g);
    switch (opts.kind) {
      case 'virtual': {
        const m = new VirtualKVManager({ ...shape, budgetBytes, pageSize: opts.pageSize });
        return new ManagedKV(m, m.view());
      }
      case 'paged': {
        // vLLM's layout: the model's attention walks the manager's block tables.
        const m = new PagedKVManager({ ...shape, budgetBytes, blockSize: opts.blockSize });
        return new ManagedKV(m, m.view());
      }
      case 'static': {
        // Every slot is backed for the whole context up front, so the budget decides how many slots exist.
        const slots = Math.min(g.maxSlots, Math.floor(budgetBytes / (g.maxContext * kvBytesPerToken(g))));
        if (slots < 1) throw new RangeError(`kvMemory (${budgetBytes} bytes) holds no static slot of ${g.maxContext} tokens (${g.maxContext * kvBytesPerToken(g)} bytes)`);
        const m = new StaticKVManager({ ...shape, maxSlots: slots });
        return new ManagedKV(m, m.view());
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

  allocSlot(): number | undefined {
    return this.manager.allocSlot() ?? undefined;
  }

  pagesFor(tokens: number): number {
    return this.manager.pagesForTokens(tokens);
  }

  freePages(): number {
    return this.manager.availablePages();
  }

  grow(slot: number, tokens: number): boolean {
    if (this.manager.pagesNeeded(slot, tokens) > 0) {
      // The slots planned so far go in the same call: the manager may reclaim pages beyond the tokens it
      // knows a slot holds, and must not take those that this step is about to write.
      const r = this.stepSlots([...this.planned, [slot, tokens]]);
      if (!r.ok) {
        this.lastRefusal = r.reason ?? `the KV pool is full (${r.pagesNeeded} pages needed, ${r.pagesAvailable} free or reclaimable)`;
        return false;
      }
    }
    this.planned.set(slot, tokens);
    return true;
  }

  commit(): void {
    if (this.planned.size === 0) return;
    const r = this.stepSlots(this.planned);
    this.planned.clear();
    // Every page was mapped by grow(); failing here means the plan and the manager disagree.
    if (!r.ok) throw new Error(`KV step needed ${r.pagesNeeded} more pages after planning (${r.pagesAvailable} available)`);
  }

  freeSlot(slot: number): void {
    this.planned.delete(slot);
    this.manager.freeSlot(slot);
  }

  stats(): KVStats {
    return this.manager.stats();
  }

  close(): void {
    this.manager.close();
  }

  private stepSlots(targets: Iterable<[slot: number, tokens: number]>): GrowResult {
    this.lens.fill(0);
    for (const [slot, tokens] of targets) this.lens[slot] = tokens;
    return this.manager.step(this.lens);
  }
}
