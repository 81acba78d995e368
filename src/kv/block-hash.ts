// The prefix cache's key chain, on its own so that a process without a KV cache (the router) computes the
// same keys as the replicas: a block's key hashes its parent's key and its own tokens, and the chain's root
// hashes the layout version, the model-and-format fingerprint and an optional tenant salt. Equal keys
// therefore mean equal KV in any process, which is what shared tiers and prefix-aware routing rely on.
import { createHash } from 'node:crypto';

/** Bumped when the meaning of a block's bytes changes, so old keys never match new caches. */
export const BLOCK_LAYOUT_VERSION = 'vserve-prefix-1';

/**
 * The fingerprint a chain is rooted in: the model file's, then the cache format's (KV types, residual,
 * rotation, block size). Built and taken apart only here, so that a reader of another process's keys (the
 * router) can tell which of the two differs.
 */
export function chainFingerprint(model: string, format: string): string {
  return `${model}/${format}`;
}

/** The model and format parts of a chain fingerprint (format '' when it has none). */
export function chainFingerprintParts(fingerprint: string): { model: string; format: string } {
  const slash = fingerprint.indexOf('/');
  return slash < 0 ? { model: fingerprint, format: '' } : { model: fingerprint.slice(0, slash), format: fingerprint.slice(slash + 1) };
}

/** Roots are cached per salt up to this many salts (tenants); past it they are recomputed. */
const MAX_CACHED_ROOTS = 1024;

export class BlockHasher {
  private readonly roots = new Map<string, string>();
  private readonly tokens: Int32Array;
  private readonly bytes: Uint8Array;

  constructor(
    /** Model and cache-format fingerprint: part of every key. */
    readonly fingerprint: string,
    /** Tokens per block. */
    readonly blockTokens: number,
  ) {
    if (!(Number.isInteger(blockTokens) && blockTokens > 0)) throw new RangeError(`blockTokens must be a positive integer, got ${blockTokens}`);
    this.tokens = new Int32Array(blockTokens);
    this.bytes = new Uint8Array(this.tokens.buffer);
  }

  /** Extends `chain` (keys of blocks 0..chain.length-1 of a token sequence) to its first `count` blocks. */
  extend(chain: string[], tokenAt: (i: number) => number, count: number, salt = ''): void {
    const n = this.blockTokens;
    for (let b = chain.length; b < count; b++) {
      for (let i = 0; i < n; i++) this.tokens[i] = tokenAt(b * n + i);
      const parent = b === 0 ? this.root(salt) : chain[b - 1]!;
      chain.push(createHash('sha256').update(parent).update(this.bytes).digest('base64url'));
    }
  }

  /** The keys of every full block of `tokens`. */
  chain(tokens: ArrayLike<number>, salt = ''): string[] {
    const chain: string[] = [];
    this.extend(chain, (i) => tokens[i]!, Math.floor(tokens.length / this.blockTokens), salt);
    return chain;
  }

  private root(salt: string): string {
    let root = this.roots.get(salt);
    if (root === undefined) {
      root = createHash('sha256').update(`${BLOCK_LAYOUT_VERSION}\0${this.fingerprint}\0${salt}`).digest('base64url');
      if (this.roots.size < MAX_CACHED_ROOTS) this.roots.set(salt, root);
    }
    return root;
  }
}
