// Inside a JSON string, or the key of an object that takes any key, most of a vocabulary is allowed:
// every token that is plain text (no quote, no backslash, no control byte; whole UTF-8 characters, or
// only printable ASCII in a key) leaves the reading where it was. Walking the trie for them at every
// step of a long string cost most of a decode step, so they are found once per vocabulary: a step there
// marks them at once and walks only the trie of the other tokens.
import { freeKeyState, inFreeKey, inPlainString, plainStringState, stepAll, type JsonState } from './json-automaton.js';
import { buildTrie, type TrieNode, type Vocabulary } from './vocabulary-trie.js';

/** The plain tokens of one kind of text, and the trie of every other token. */
export interface TextTokens {
  plain: Int32Array;
  rest: TrieNode;
}

export interface StringTokens {
  /** Inside a string without length bounds, between characters. */
  inString: TextTokens;
  /** Inside the key of an object that takes any key. */
  inKey: TextTokens;
}

const found = new WeakMap<Vocabulary, StringTokens>();

/** The automaton itself decides: fed the token's bytes from `start`, it is still in the same text. */
function staysIn(piece: Uint8Array, start: JsonState, inText: (st: JsonState) => boolean): boolean {
  if (piece.length === 0) return false;
  let states = [start];
  for (const b of piece) {
    states = stepAll(states, b);
    if (states.length === 0) return false;
  }
  return states.length === 1 && states[0]!.frames.length === 1 && inText(states[0]!);
}

function textTokens(vocab: Vocabulary, start: JsonState, inText: (st: JsonState) => boolean): TextTokens {
  const plain: number[] = [];
  const others = vocab.bytes.map((piece, id) => {
    if (!staysIn(piece, start, inText)) return piece;
    plain.push(id);
    return new Uint8Array(0);
  });
  return { plain: Int32Array.from(plain), rest: buildTrie(others) };
}

export function stringTokensOf(vocab: Vocabulary): StringTokens {
  let s = found.get(vocab);
  if (!s) {
    s = { inString: textTokens(vocab, plainStringState(), inPlainString), inKey: textTokens(vocab, freeKeyState(), inFreeKey) };
    found.set(vocab, s);
  }
  return s;
}
