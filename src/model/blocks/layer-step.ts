// What every block of a layer is handed for one forward pass: the batch, the cache, this layer's
// cache rows and scratch space that lives across steps.
import type { Backend, KVView } from '../../backend/backend.js';
import { alignedFloat32Array } from '../../backend/aligned-array.js';
import type { Batch } from '../batch.js';

/**
 * Named activation buffers, grown on demand and reused across steps (a block asks by name and size).
 * Page-aligned, as the KV caches are: a plain large Float32Array starts 16 bytes into a cache line, so
 * every 64-byte row a kernel loads or stores (AMX tile rows among them) would touch two lines.
 */
export class Scratch {
  private readonly buffers = new Map<string, Float32Array>();

  /** A buffer of at least `len` floats; the returned view is exactly `len` long. */
  get(name: string, len: number): Float32Array {
    let b = this.buffers.get(name);
    if (!b || b.length < len) {
      b = alignedFloat32Array(Math.max(len, (b?.length ?? 0) * 2));
      this.buffers.set(name, b);
    }
    return b.subarray(0, len);
  }
}

export interface LayerStep {
  readonly backend: Backend;
  readonly batch: Batch;
  readonly kv: KVView;
  /** The layer's index. */
  readonly layer: number;
  /** Tokens in the batch. */
  readonly n: number;
  /** The layer's cache rows, one per token. */
  readonly rows: Int32Array;
  readonly scratch: Scratch;
}
