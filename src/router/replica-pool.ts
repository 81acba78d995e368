// The router's replicas together: starts and stops their health checks and block streams, keeps them in
// agreement on how block keys are built (a replica whose hello differs from the others', or whose model
// is not the router's, gets no requests, and the log says what differs), and hashes a prompt with the
// chain they share.
import { BlockHasher } from '../kv/block-hash.js';
import { chainDifference, modelPartOf, type ChainParams } from './chain-params.js';
import { Replica, type ReplicaOptions } from './replica.js';
import type { RequestPrompt } from './request-tokens.js';
import type { RouteRequest } from './routing-policy.js';

export interface ReplicaPoolOptions extends Omit<ReplicaOptions, 'onHello'> {
  /** The fingerprint of the router's own model file (-m), which every replica's must start with. */
  modelFingerprint: string;
}

export class ReplicaPool {
  readonly replicas: readonly Replica[];
  private hasher: BlockHasher | undefined;

  constructor(urls: readonly string[], private readonly options: ReplicaPoolOptions) {
    if (urls.length === 0) throw new RangeError('the router needs at least one replica');
    this.replicas = urls.map((url) => new Replica(url, { ...options, onHello: () => this.judgeAll() }));
  }

  start(): void {
    for (const r of this.replicas) r.start();
  }

  async stop(): Promise<void> {
    await Promise.all(this.replicas.map((r) => r.stop()));
  }

  /** Replicas that may take a request now, less those in `exclude` (already tried for it). */
  eligible(exclude: ReadonlySet<Replica> = new Set()): Replica[] {
    return this.replicas.filter((r) => r.eligible && !exclude.has(r));
  }

  /** The chain parameters the replicas agree on (those of the first one whose stream is up). */
  get params(): ChainParams | undefined {
    return this.replicas.find((r) => r.params && r.incompatible === undefined)?.params;
  }

  /** The routing view of a prompt: the keys of the blocks a replica could take from its cache, and its size. */
  route(prompt: RequestPrompt | undefined): RouteRequest {
    const params = this.params;
    if (!prompt || !params) return { chain: [], blocks: 0 };
    if (this.hasher?.fingerprint !== params.fingerprint || this.hasher.blockTokens !== params.blockTokens) {
      this.hasher = new BlockHasher(params.fingerprint, params.blockTokens);
    }
    const n = params.blockTokens;
    // A part-filled last block counts by its share: a prompt that only adds a short question to a cached
    // prefix is a fraction of a block of work, not a whole one.
    const blocks = prompt.tokens.length / n;
    if (!prompt.shareable) return { chain: [], blocks };
    // As the replica's lookup: never the block holding the last prompt token (its logits are needed).
    const shareable = Math.floor((prompt.tokens.length - 1) / n);
    return { chain: this.hasher.chain(prompt.tokens.slice(0, shareable * n), prompt.salt), blocks };
  }

  /**
   * Checks every replica that said hello against the router's model and against the reference: the first
   * replica, in the order given, whose model is the router's. Re-run on each hello, so the verdict does
   * not depend on which block stream happened to connect first.
   */
  private judgeAll(): void {
    const servesOurModel = (r: Replica) => modelPartOf(r.params!.fingerprint) === this.options.modelFingerprint;
    const reference = this.replicas.find((r) => r.params && servesOurModel(r));
    for (const replica of this.replicas) {
      if (!replica.params) continue;
      const before = replica.incompatible;
      if (!servesOurModel(replica)) {
        replica.incompatible = `it serves another model file than the router's -m (model fingerprint ${modelPartOf(replica.params.fingerprint)} vs ${this.options.modelFingerprint})`;
      } else {
        const diff = reference && reference !== replica ? chainDifference(reference.params!, replica.params) : undefined;
        replica.incompatible = diff && `its prefix-cache keys differ from ${reference!.url}'s: ${diff}; start every replica with the same model, --kv-type and block size`;
      }
      if (replica.incompatible !== before) {
        this.options.log?.(`replica ${replica.url}: ${replica.incompatible ? `gets no requests: ${replica.incompatible}` : 'its prefix-cache keys agree with the router\'s'}`);
      }
    }
  }
}
