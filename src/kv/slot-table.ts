// Which slots are in use and how many tokens each holds: the bookkeeping the TypeScript managers
// (paged, static) share. The native virtual manager keeps the same state in C++.
import { checkSlotIndex, checkTokenCount } from './arguments.js';
import { KVError } from './errors.js';

export class SlotTable {
  readonly tokens: Int32Array;
  private readonly used: Uint8Array;

  constructor(
    readonly maxSlots: number,
    readonly maxContext: number,
  ) {
    this.tokens = new Int32Array(maxSlots);
    this.used = new Uint8Array(maxSlots);
  }

  isActive(slot: number): boolean {
    return this.used[slot] === 1;
  }

  activeCount(): number {
    return this.used.reduce((n, u) => n + u, 0);
  }

  /** Lowest free slot, now active with 0 tokens; null when all are in use. */
  alloc(): number | null {
    const slot = this.used.indexOf(0);
    if (slot < 0) return null;
    this.used[slot] = 1;
    this.tokens[slot] = 0;
    return slot;
  }

  free(slot: number): void {
    checkSlotIndex(slot, this.maxSlots);
    if (!this.used[slot]) {
      throw new KVError('ERR_KV_DOUBLE_FREE', `freeSlot: slot ${slot} is not allocated (double free, or never allocated)`);
    }
    this.used[slot] = 0;
    this.tokens[slot] = 0;
  }

  requireActive(slot: number, what: string): void {
    checkSlotIndex(slot, this.maxSlots);
    if (!this.used[slot]) throw new KVError('ERR_KV_UNKNOWN_SLOT', `${what}: slot ${slot} is not allocated`);
  }

  /** Checks one step entry (already known to be > 0) the way the native manager does. */
  checkStepTarget(slot: number, len: number): void {
    if (!this.used[slot]) {
      throw new KVError('ERR_KV_UNKNOWN_SLOT', `step: slot ${slot} is not allocated but seqLens[${slot}] = ${len}`);
    }
    checkTokenCount(`step: slot ${slot}`, len, this.maxContext);
    if (len < this.tokens[slot]!) {
      throw new KVError(
        'ERR_KV_INVALID_ARGUMENT',
        `step: slot ${slot} holds ${this.tokens[slot]} tokens; seqLen ${len} would shrink it (use compact or freeSlot)`,
      );
    }
  }

  /** Checks a share request the way the native manager does. */
  checkShare(src: number, dst: number, tokens: number): void {
    this.requireActive(src, 'share (source)');
    this.requireActive(dst, 'share (destination)');
    if (src === dst) throw new KVError('ERR_KV_INVALID_ARGUMENT', 'share: source and destination are the same slot');
    if (!Number.isInteger(tokens) || tokens < 0 || tokens > this.tokens[src]!) {
      throw new KVError('ERR_KV_INVALID_ARGUMENT', `share: slot ${src} holds only ${this.tokens[src]} tokens, asked to share ${tokens}`);
    }
    if (this.tokens[dst] !== 0) throw new KVError('ERR_KV_INVALID_ARGUMENT', `share: destination slot ${dst} already holds tokens`);
  }
}
