// Constrained decoding for response_format: before each draw, a mask of the vocabulary admits only
// the tokens whose bytes keep the output a prefix of a document the schema accepts, and that leave
// enough of the token budget to close it; end-of-generation only once the document is complete.
// Each token's bytes are computed once per tokenizer and laid out as a trie, so a step walks each shared
// prefix once and skips every token below a prefix the document cannot take.
import { canEnd, cost, initialState, stepAll, type JsonState } from './json-automaton.js';
import { compileResponseFormat, minLength, type ResponseFormat } from './json-schema.js';
import { RequestFaultError } from '../engine/error-kind.js';

/** What masking needs of a tokenizer. */
export interface VocabularyTokenizer {
  readonly vocabSize: number;
  /** With renderSpecial false: the bytes the token adds to generated text (none for control tokens). */
  tokenToPiece(id: number, renderSpecial?: boolean): Uint8Array;
  isEndOfGeneration(id: number): boolean;
}

/** A trie node: the tokens whose bytes end here, and the next byte's nodes. */
interface TrieNode {
  ids: number[];
  next: Map<number, TrieNode>;
}

interface Vocabulary {
  /** Each token's bytes; empty for control tokens, which never appear in a document. */
  bytes: Uint8Array[];
  eog: boolean[];
  trie: TrieNode;
}

function buildTrie(bytes: readonly Uint8Array[]): TrieNode {
  const root: TrieNode = { ids: [], next: new Map() };
  bytes.forEach((piece, id) => {
    if (piece.length === 0) return;
    let node = root;
    for (const b of piece) {
      let child = node.next.get(b);
      if (!child) node.next.set(b, (child = { ids: [], next: new Map() }));
      node = child;
    }
    node.ids.push(id);
  });
  return root;
}

const vocabularies = new WeakMap<VocabularyTokenizer, Vocabulary>();

function vocabularyOf(t: VocabularyTokenizer): Vocabulary {
  let v = vocabularies.get(t);
  if (!v) {
    const ids = Array.from({ length: t.vocabSize }, (_, id) => id);
    const bytes = ids.map((id) => (t.isEndOfGeneration(id) ? new Uint8Array(0) : t.tokenToPiece(id, false)));
    v = { eog: ids.map((id) => t.isEndOfGeneration(id)), bytes, trie: buildTrie(bytes) };
    vocabularies.set(t, v);
  }
  return v;
}

export class JsonConstraint {
  private states: JsonState[];
  private readonly vocab: Vocabulary;
  private readonly mask: Uint8Array;

  constructor(format: ResponseFormat, tokenizer: VocabularyTokenizer, maxTokens: number) {
    const schema = compileResponseFormat(format);
    this.vocab = vocabularyOf(tokenizer);
    this.mask = new Uint8Array(tokenizer.vocabSize);
    this.states = [initialState(schema)];
    // A budget no document fits in would end the output mid-document.
    const least = minLength(schema);
    if (maxTokens < least) {
      throw new RequestFaultError(`max_tokens ${maxTokens} cannot hold the shortest JSON the response_format accepts (${least} bytes)`, 'invalid_value', 'max_tokens');
    }
  }

  /** The tokens allowed next, `left` tokens of budget remaining (this one included). */
  allowed(left: number): Uint8Array {
    const { eog, trie } = this.vocab;
    this.mask.fill(0);
    let any = this.walk(trie, this.states, left - 1);
    if (this.states.some(canEnd)) {
      for (let id = 0; id < eog.length; id++) if (eog[id]) this.mask[id] = 1;
      any = true;
    }
    // Nothing fits (a vocabulary without the bytes to close): let generation end rather than fail.
    if (!any) for (let id = 0; id < eog.length; id++) if (eog[id]) this.mask[id] = 1;
    return this.mask;
  }

  /** Marks the tokens below `node` that `states` can take and still close within `tokens`; true if any. */
  private walk(node: TrieNode, states: readonly JsonState[], tokens: number): boolean {
    let any = false;
    for (const [b, child] of node.next) {
      const next = stepAll(states, b);
      if (next.length === 0) continue;
      if (child.ids.length > 0 && this.fits(next, tokens)) {
        for (const id of child.ids) this.mask[id] = 1;
        any = true;
      }
      if (child.next.size > 0) any = this.walk(child, next, tokens) || any;
    }
    return any;
  }

  /** Moves past a drawn token. */
  advance(id: number): void {
    if (this.vocab.eog[id]) return;
    const next = this.after(this.vocab.bytes[id]!);
    if (next.length > 0) this.states = next;
  }

  private after(piece: Uint8Array): JsonState[] {
    let states = this.states;
    for (const b of piece) {
      states = stepAll(states, b);
      if (states.length === 0) break;
    }
    return states;
  }

  /** Some reading can still be completed within `tokens` more tokens (one byte each at worst). */
  private fits(states: readonly JsonState[], tokens: number): boolean {
    for (const st of states) if (cost(st) <= tokens) return true;
    return false;
  }
}
