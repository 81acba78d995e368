// A vocabulary as constrained decoding sees it: each token's bytes as generated (none for control
// tokens), which tokens end generation, and a trie of the bytes. It is computed once per tokenizer, so
// every constrained request shares it.
import { ByteTrie } from './byte-trie.js';

/** What masking needs of a tokenizer. */
export interface VocabularyTokenizer {
  readonly vocabSize: number;
  /** With renderSpecial false: the bytes the token adds to generated text (none for control tokens). */
  tokenToPiece(id: number, renderSpecial?: boolean): Uint8Array;
  isEndOfGeneration(id: number): boolean;
}

export interface Vocabulary {
  /** Each token's bytes; empty for control tokens, which never appear in a document. */
  bytes: Uint8Array[];
  eog: boolean[];
  trie: ByteTrie;
}

const vocabularies = new WeakMap<VocabularyTokenizer, Vocabulary>();

export function vocabularyOf(t: VocabularyTokenizer): Vocabulary {
  let v = vocabularies.get(t);
  if (!v) {
    const ids = Array.from({ length: t.vocabSize }, (_, id) => id);
    const bytes = ids.map((id) => (t.isEndOfGeneration(id) ? new Uint8Array(0) : t.tokenToPiece(id, false)));
    v = { eog: ids.map((id) => t.isEndOfGeneration(id)), bytes, trie: ByteTrie.of(bytes) };
    vocabularies.set(t, v);
  }
  return v;
}
