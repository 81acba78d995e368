// A trie of token bytes in flat typed arrays: node n's edges are edgeByte / edgeNode[edgeStart[n] ..
// edgeStart[n + 1]) and the tokens ending at it idList[idStart[n] .. idStart[n + 1]). A trie of objects
// with a Map per node took about 450 bytes a node (140 MB at a 152K vocabulary); this takes about 20,
// and the masks walk it without allocating.

export class ByteTrie {
  static readonly ROOT = 0;

  private constructor(
    readonly edgeStart: Int32Array,
    readonly edgeByte: Uint8Array,
    readonly edgeNode: Int32Array,
    readonly idStart: Int32Array,
    readonly idList: Int32Array,
  ) {}

  /** The trie of `pieces` (a token id is its index; empty pieces are left out). */
  static of(pieces: readonly Uint8Array[]): ByteTrie {
    // Sorted by bytes, a token shares with the one before it exactly the nodes of their common prefix,
    // so one pass creates every node (each distinct prefix), numbered depth-first, children in byte order.
    const order = pieces.map((_, id) => id).filter((id) => pieces[id]!.length > 0);
    order.sort((a, b) => compareBytes(pieces[a]!, pieces[b]!));
    const path: number[] = [0]; // path[d]: the node of the current token's first d bytes
    const parent: number[] = [-1];
    const byte: number[] = [0];
    const ends: number[][] = [[]];
    let previous: Uint8Array | undefined;
    for (const id of order) {
      const piece = pieces[id]!;
      const shared = previous === undefined ? 0 : commonPrefix(previous, piece);
      for (let d = shared + 1; d <= piece.length; d++) {
        const node = parent.length;
        parent.push(path[d - 1]!);
        byte.push(piece[d - 1]!);
        ends.push([]);
        path[d] = node;
      }
      ends[path[piece.length]!]!.push(id);
      previous = piece;
    }
    const nodes = parent.length;
    // Children of each node, in byte order (they were created in sorted order).
    const childCount = new Int32Array(nodes);
    for (let n = 1; n < nodes; n++) childCount[parent[n]!]!++;
    const edgeStart = new Int32Array(nodes + 1);
    for (let n = 0; n < nodes; n++) edgeStart[n + 1] = edgeStart[n]! + childCount[n]!;
    const fill = edgeStart.slice(0, nodes);
    const edgeByte = new Uint8Array(nodes - 1);
    const edgeNode = new Int32Array(nodes - 1);
    for (let n = 1; n < nodes; n++) {
      const at = fill[parent[n]!]!++;
      edgeByte[at] = byte[n]!;
      edgeNode[at] = n;
    }
    const idStart = new Int32Array(nodes + 1);
    for (let n = 0; n < nodes; n++) idStart[n + 1] = idStart[n]! + ends[n]!.length;
    const idList = new Int32Array(idStart[nodes]!);
    for (let n = 0; n < nodes; n++) idList.set(ends[n]!, idStart[n]!);
    return new ByteTrie(edgeStart, edgeByte, edgeNode, idStart, idList);
  }

  get nodes(): number {
    return this.edgeStart.length - 1;
  }

  hasChildren(node: number): boolean {
    return this.edgeStart[node]! < this.edgeStart[node + 1]!;
  }

  hasTokens(node: number): boolean {
    return this.idStart[node]! < this.idStart[node + 1]!;
  }

  /** The node below `node` by byte `b`, or -1. */
  child(node: number, b: number): number {
    for (let e = this.edgeStart[node]!; e < this.edgeStart[node + 1]!; e++) if (this.edgeByte[e] === b) return this.edgeNode[e]!;
    return -1;
  }

  /** The node reached by `bytes` from the root, or -1. */
  descend(bytes: Uint8Array): number {
    let node = ByteTrie.ROOT;
    for (const b of bytes) {
      node = this.child(node, b);
      if (node < 0) return -1;
    }
    return node;
  }

  /** Calls `f` with every token at or below `node`. */
  forEachBelow(node: number, f: (id: number) => void): void {
    for (let k = this.idStart[node]!; k < this.idStart[node + 1]!; k++) f(this.idList[k]!);
    for (let e = this.edgeStart[node]!; e < this.edgeStart[node + 1]!; e++) this.forEachBelow(this.edgeNode[e]!, f);
  }
}

function compareBytes(a: Uint8Array, b: Uint8Array): number {
  const n = Math.min(a.length, b.length);
  for (let i = 0; i < n; i++) if (a[i] !== b[i]) return a[i]! - b[i]!;
  return a.length - b.length;
}

function commonPrefix(a: Uint8Array, b: Uint8Array): number {
  const n = Math.min(a.length, b.length);
  let i = 0;
  while (i < n && a[i] === b[i]) i++;
  return i;
}
