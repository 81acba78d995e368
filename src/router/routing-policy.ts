// Which replica gets a request. 'prefix' weighs what each replica already holds against its load, as
// Dynamo's KV router does: cost = overlapWeight x (prompt blocks the replica would have to compute) +
// (blocks it still has to compute for the requests in flight there); the lowest cost wins. Ties go to the
// replica holding more of the prompt (the other would compute those blocks a second time and evict other
// prefixes to store them), then to fewer requests in flight, then in turn. 'round-robin' and 'least-loaded' ignore the cache, for comparison.

/** What a policy may know of a replica. */
export interface ReplicaView {
  readonly url: string;
  readonly inFlight: number;
  /** Prompt blocks it still has to compute for the requests in flight there (see Replica.activeBlocks). */
  readonly activeBlocks: number;
  /** Leading blocks of `chain` the replica holds or is computing now. */
  cachedPrefix(chain: readonly string[]): number;
}

export interface RouteRequest {
  /** Keys of the prompt's blocks the replica could take from its cache (empty when unknown). */
  chain: readonly string[];
  /** The prompt's length in blocks (tokens / block size, not rounded): the work of computing it from nothing. */
  blocks: number;
}

export interface RouteDecision<R extends ReplicaView> {
  replica: R;
  /** Blocks of the prompt the chosen replica holds. */
  overlapBlocks: number;
  /** What decided: its cached prefix, its load, or its turn. */
  basis: 'cached_prefix' | 'load' | 'turn';
}

export const POLICY_NAMES = ['prefix', 'round-robin', 'least-loaded'] as const;
export type PolicyName = (typeof POLICY_NAMES)[number];

export interface RoutingPolicy {
  readonly name: PolicyName;
  /** Chooses among `replicas` (at least one, all able to take requests). */
  choose<R extends ReplicaView>(replicas: readonly R[], request: RouteRequest): RouteDecision<R>;
}

/**
 * A block this request would compute costs four blocks already queued (Dynamo's default is one). Computing
 * a prefix another replica holds is work the cluster did before, and storing it pushes other prefixes out,
 * which are then computed again: at weight 1, routing under overload sent prompts away from the replica
 * holding them until the caches thrashed (bench/README.md, the cluster benchmark's part 2).
 */
export const DEFAULT_OVERLAP_WEIGHT = 4;

export function createPolicy(name: PolicyName, overlapWeight = DEFAULT_OVERLAP_WEIGHT): RoutingPolicy {
  if (!(overlapWeight >= 0 && Number.isFinite(overlapWeight))) throw new RangeError(`overlapWeight must be a finite number >= 0, got ${overlapWeight}`);
  switch (name) {
    case 'prefix': return new PrefixPolicy(overlapWeight);
    case 'round-robin': return new RoundRobinPolicy();
    case 'least-loaded': return new LeastLoadedPolicy();
  }
}

/** Picks among equally good replicas in turn, so that ties do not all land on the first. */
class Turns {
  private next = 0;
  pick<T>(tied: readonly T[]): T {
    return tied[this.next++ % tied.length]!;
  }
}

/** The replicas with the lowest `key`, in their order; keys that differ only by rounding count as equal. */
function lowest<T>(items: readonly T[], key: (item: T) => number): T[] {
  const best = Math.min(...items.map(key));
  const slack = 1e-9 * Math.max(1, Math.abs(best));
  return items.filter((item) => key(item) <= best + slack);
}

class PrefixPolicy implements RoutingPolicy {
  readonly name = 'prefix';
  private readonly turns = new Turns();

  constructor(private readonly overlapWeight: number) {}

  choose<R extends ReplicaView>(replicas: readonly R[], request: RouteRequest): RouteDecision<R> {
    const scored = replicas.map((replica) => {
      const overlapBlocks = replica.cachedPrefix(request.chain);
      return { replica, overlapBlocks, cost: this.overlapWeight * (request.blocks - overlapBlocks) + replica.activeBlocks };
    });
    const cheapest = lowest(lowest(lowest(scored, (s) => s.cost), (s) => -s.overlapBlocks), (s) => s.replica.inFlight);
    const { replica, overlapBlocks } = this.turns.pick(cheapest);
    // The cache decided when the winner holds more of the prompt than some other replica does.
    const basis = scored.some((s) => s.overlapBlocks < overlapBlocks) ? 'cached_prefix' : cheapest.length < scored.length ? 'load' : 'turn';
    return { replica, overlapBlocks, basis };
  }
}

class RoundRobinPolicy implements RoutingPolicy {
  readonly name = 'round-robin';
  private readonly turns = new Turns();

  choose<R extends ReplicaView>(replicas: readonly R[], request: RouteRequest): RouteDecision<R> {
    const replica = this.turns.pick(replicas);
    return { replica, overlapBlocks: replica.cachedPrefix(request.chain), basis: 'turn' };
  }
}

class LeastLoadedPolicy implements RoutingPolicy {
  readonly name = 'least-loaded';
  private readonly turns = new Turns();

  choose<R extends ReplicaView>(replicas: readonly R[], request: RouteRequest): RouteDecision<R> {
    const tied = lowest(lowest(replicas, (r) => r.inFlight), (r) => r.activeBlocks);
    const replica = this.turns.pick(tied);
    return { replica, overlapBlocks: replica.cachedPrefix(request.chain), basis: tied.length < replicas.length ? 'load' : 'turn' };
  }
}
