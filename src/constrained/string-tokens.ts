// Inside a JSON string, or the key of an object that takes any key, most of a vocabulary is allowed:
// every token that is plain text (no quote, no backslash, no control byte; whole UTF-8 characters, or
// only printable ASCII in a key) leaves the reading where it was. Walking the trie for them at every
// step of a long string cost most of a decode step, so they are found once per vocabulary: a step there
// marks them at once and walks only the trie of the tokens that leave the text (a closing quote) or stop
// mid-character; tokens no string or key can hold are not walked at all.
import { freeKeyState, inFreeKey, inPlainString, plainStringState, stepAll, type JsonState } from './json-automaton.js';
import { ByteTrie } from './byte-trie.js';
import type { Vocabulary } from './vocabulary-trie.js';

/** The plain tokens of one kind of text, and the trie of the tokens whose fate depends on the reading. */
export interface TextTokens {
  plain: Int32Array;
  rest: ByteTrie;
}

export interface StringTokens {
  /** Inside a string without length bounds, between characters. */
  inString: TextTokens;
  /** Inside the key of an object that takes any key. */
  inKey: TextTokens;
}

const found = new WeakMap<Vocabulary, StringTokens>();

type Kind = 'plain' | 'dead' | 'other';

/**
 * The automaton itself decides, feeding the token's bytes from `start`: plain when it is still in the
 * same text at the end; dead when it fails while still inside the text (a byte no string or key takes,
 * which no enclosing reading can change); other when it leaves the text or stops mid-character, where
 * what follows depends on the reading, so the mask walks it.
 */
function kindOf(piece: Uint8Array, start: JsonState, inText: (st: JsonState) => boolean): Kind {
  if (piece.length === 0) return 'dead';
  let states = [start];
  for (const b of piece) {
    const next = stepAll(states, b);
    if (next.length === 0) return 'dead';
    states = next;
    // Out of the text (a closing quote): the rest of the token meets the enclosing reading.
    if (states.some((st) => st.frames.length !== 1)) return 'other';
  }
  return states.length === 1 && inText(states[0]!) ? 'plain' : 'other';
}

function textTokens(vocab: Vocabulary, start: JsonState, inText: (st: JsonState) => boolean): TextTokens {
  const plain: number[] = [];
  // Dead tokens are left out of the walked trie too: no reading in this text can take them.
  const others = vocab.bytes.map((piece, id) => {
    const kind = kindOf(piece, start, inText);
    if (kind === 'plain') plain.push(id);
    return kind === 'other' ? piece : new Uint8Array(0);
  });
  return { plain: Int32Array.from(plain), rest: ByteTrie.of(others) };
}

export function stringTokensOf(vocab: Vocabulary): StringTokens {
  let s = found.get(vocab);
  if (!s) {
    s = { inString: textTokens(vocab, plainStringState(), inPlainString), inKey: textTokens(vocab, freeKeyState(), inFreeKey) };
    found.set(vocab, s);
  }
  return s;
}
