// A refcounted allocator of equal blocks: a stack of free ids (lowest first) and a refcount per block.
// PagedKV uses it for its blocks; a block with refcount > 1 is shared by several slots' block tables.

export class BlockAllocator {
  private readonly refs: Uint32Array;
  private readonly freeStack: Int32Array;
  private top: number;

  constructor(readonly count: number) {
    this.refs = new Uint32Array(count);
    this.freeStack = new Int32Array(count);
    for (let i = 0; i < count; i++) this.freeStack[i] = count - 1 - i;
    this.top = count;
  }

  get freeCount(): number {
    return this.top;
  }

  /** A free block with refcount 1, or -1 when none is left. */
  take(): number {
    if (this.top === 0) return -1;
    const id = this.freeStack[--this.top]!;
    this.refs[id] = 1;
    return id;
  }

  retain(id: number): void {
    this.refs[id]!++;
  }

  /** Drops one reference; true when the block became free. */
  release(id: number): boolean {
    if (this.refs[id] === 0) throw new Error(`block ${id} released while free`);
    if (--this.refs[id]! > 0) return false;
    this.freeStack[this.top++] = id;
    return true;
  }

  refCount(id: number): number {
    return this.refs[id]!;
  }

  /** Every block's refcount, by id: a live view to read at once, not to keep. */
  refCounts(): ArrayLike<number> {
    return this.refs;
  }
}
