// Per slot, what compaction took out of it since the slot was taken: the rows an eviction policy dropped,
// which the slot's own counts (tokens, pages) no longer show. Kept by the managers, who see every
// compaction, so the stats can tell an evicting sequence from one that is merely short.
export class SlotEvictions {
  private readonly rows: Float64Array;
  private readonly times: Uint32Array;

  constructor(maxSlots: number) {
    this.rows = new Float64Array(maxSlots);
    this.times = new Uint32Array(maxSlots);
  }

  /** A slot taken or given back starts over. */
  reset(slot: number): void {
    this.rows[slot] = 0;
    this.times[slot] = 0;
  }

  /** A compaction of slot from `before` rows down to `after`. */
  compacted(slot: number, before: number, after: number): void {
    this.rows[slot]! += before - after;
    this.times[slot]!++;
  }

  /** dst now holds src's rows, and so what was evicted from them. */
  copy(src: number, dst: number): void {
    this.rows[dst] = this.rows[src]!;
    this.times[dst] = this.times[src]!;
  }

  evictedRows(slot: number): number {
    return this.rows[slot]!;
  }

  compactions(slot: number): number {
    return this.times[slot]!;
  }
}
