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
    this.replicas = urls.map((url) => new Replica(url, { ...options, onHello: (r) => this.judge(r) }));
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
    const blocks = Math.ceil(prompt.tokens.length / n);
    if (!prompt.shareable) return { chain: [], blocks };
    // As the replica's lookup: never the block holding the last prompt token (its logits are needed).
    const shareable = Math.floor((prompt.tokens.length - 1) / n);
    return { chain: this.hasher.chain(prompt.tokens.slice(0, shareable * n), prompt.salt), blocks };
  }

  /** Checks a replica's hello against the router's model and the other replicas. */
  private judge(replica: Replica): void {
    const theirs = replica.params!;
    const before = replica.incompatible;
    const model = modelPartOf(theirs.fingerprint);
    const reference = this.replicas.find((r) => r !== replica && r.params && r.incompatible === undefined);
    if (model !== this.options.modelFingerprint) {
      replica.incompatible = `it serves another model file than the router's -m (model fingerprint ${model} vs ${this.options.modelFingerprint})`;
    } else if (reference) {
      const diff = chainDifference(reference.params!, theirs);
      replica.incompatible = diff && `its prefix-cache keys differ from ${reference.url}'s: ${diff}; start every replica with the same model, --kv-type and block size`;
    } else {
      replica.incompatible = undefined;
    }
    if (replica.incompatible !== before) {
      this.options.log?.(`replica ${replica.url}: ${replica.incompatible ? `gets no requests: ${replica.incompatible}` : 'its prefix-cache keys agree with the router\'s'}`);
    }
  }
}
