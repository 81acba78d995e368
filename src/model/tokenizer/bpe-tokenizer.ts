// Byte-level BPE tokenizer (tokenizer.ggml.model = "gpt2"), as llama.cpp runs it: the pre-tokenizer
// cuts the text into words, each word is spelled in GPT-2's byte alphabet, and adjacent symbols are
// merged in the order of tokenizer.ggml.merges (lowest rank first). Words repeat a lot in real text,
// so their ids are cached.
import { BaseTokenizer } from './base-tokenizer.js';
import { fromByteLevel, toByteLevel } from './byte-level.js';
import { TokenizerError } from './errors.js';
import type { PreTokenizer } from './pre-tokenizer.js';
import { mergeSymbols } from './symbol-merger.js';
import { TokenType, type Vocabulary } from './vocabulary.js';

const WORD_CACHE_LIMIT = 1 << 16;

export class BpeTokenizer extends BaseTokenizer {
  readonly kind = 'bpe' as const;
  /** "left right" (as written in tokenizer.ggml.merges) → rank. */
  private readonly ranks = new Map<string, number>();
  /** Token texts that merging may produce: every type but control and unknown tokens. */
  private readonly pieceIds = new Map<string, number>();
  private readonly wordCache = new Map<string, number[]>();

  constructor(vocab: Vocabulary, merges: readonly string[], readonly preTokenizer: PreTokenizer) {
    super(vocab);
    merges.forEach((merge, rank) => {
      if (typeof merge !== 'string' || merge.indexOf(' ', 1) < 0) {
        throw new TokenizerError(`tokenizer.ggml.merges[${rank}] is not a "left right" pair: ${JSON.stringify(merge)}`);
      }
      // The first rank of a pair listed twice wins.
      if (!this.ranks.has(merge)) this.ranks.set(merge, rank);
    });
    vocab.tokens.forEach((text, id) => {
      const type = vocab.types[id];
      if (type !== TokenType.Control && type !== TokenType.Unknown) this.pieceIds.set(text, id);
    });
  }

  protected encodeText(text: string, _afterSpecial: boolean, out: number[], stopAfter: number): void {
    for (const word of this.preTokenizer.split(text)) {
      // Words are encoded independently, so the count so far is exact for the text so far.
      if (out.length > stopAfter) return;
      let ids = this.wordCache.get(word);
      if (ids === undefined) {
        ids = this.encodeWord(toByteLevel(word));
        if (this.wordCache.size < WORD_CACHE_LIMIT) this.wordCache.set(word, ids);
      }
      for (const id of ids) out.push(id);
    }
  }

  private encodeWord(word: string): number[] {
    if (this.preTokenizer.ignoreMerges) {
      const id = this.pieceIds.get(word);
      if (id !== undefined) return [id];
    }
    // Byte-level characters are all in the BMP, so splitting by UTF-16 unit splits by byte.
    const symbols = mergeSymbols(word.split(''), (left, right) => this.ranks.get(left + ' ' + right));
    const ids: number[] = [];
    for (const symbol of symbols) {
      const id = this.pieceIds.get(symbol);
      if (id !== undefined) {
        ids.push(id);
        continue;
      }
      // A merge whose result is not in the vocabulary, or a byte it lacks: spell it byte by byte.
      for (const ch of symbol) {
        const byteId = this.pieceIds.get(ch) ?? this.vocab.unk;
        if (byteId !== undefined) ids.push(byteId);
      }
    }
    return ids;
  }

  protected textTokenBytes(id: number): Uint8Array {
    return fromByteLevel(this.vocab.tokens[id]!);
  }
}
