// Greedy pairwise merging of adjacent symbols, the loop at the heart of both the SentencePiece and
// the BPE encoder: keep merging the best-ranked adjacent pair until no adjacent pair can merge.
// Symbols form a linked list and candidate pairs wait in a heap, so n symbols cost O(n log n)
// rather than the O(n²) of rescanning the word after every merge.
import { MinHeap } from './min-heap.js';

/** The rank of merging `left` with `right` (lower merges first), or undefined when they cannot merge. */
export type PairRank = (left: string, right: string) => number | undefined;

interface Candidate {
  rank: number;
  left: number;
  right: number;
  /** Combined length when the pair was ranked; a different length now means the pair is stale. */
  length: number;
}

/** Merges `symbols` (which must not be empty strings) and returns the final symbols in order. */
export function mergeSymbols(symbols: readonly string[], rankOf: PairRank): string[] {
  const n = symbols.length;
  if (n < 2) return symbols.slice();
  const text = symbols.slice();
  const prev = new Int32Array(n);
  const next = new Int32Array(n);
  for (let i = 0; i < n; i++) {
    prev[i] = i - 1;
    next[i] = i + 1 < n ? i + 1 : -1;
  }
  // Equal ranks merge leftmost first, as llama.cpp does.
  const queue = new MinHeap<Candidate>((a, b) => a.rank < b.rank || (a.rank === b.rank && a.left < b.left));
  const consider = (left: number, right: number): void => {
    if (left < 0 || right < 0) return;
    const rank = rankOf(text[left]!, text[right]!);
    if (rank !== undefined) queue.push({ rank, left, right, length: text[left]!.length + text[right]!.length });
  };
  for (let i = 1; i < n; i++) consider(i - 1, i);

  for (let c = queue.pop(); c !== undefined; c = queue.pop()) {
    const left = text[c.left]!;
    const right = text[c.right]!;
    // Symbols only grow or empty out, so unchanged lengths mean both sides are as they were ranked.
    if (left.length === 0 || right.length === 0 || left.length + right.length !== c.length) continue;
    text[c.left] = left + right;
    text[c.right] = '';
    const after = next[c.right]!;
    next[c.left] = after;
    if (after >= 0) prev[after] = c.left;
    consider(prev[c.left]!, c.left);
    consider(c.left, after);
  }

  const out: string[] = [];
  for (let i = 0; i >= 0; i = next[i]!) out.push(text[i]!);
  return out;
}
