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

const SPACE_MARK = '\u2581'; // ▁, the space of SentencePiece-style vocabularies
const BYTE_TOKEN = /^<0x([0-9A-Fa-f]{2})>$/;
const ONLY_NEWLINES = /^\n+$/;

const WORD_CACHE_LIMIT = 1 << 16;

export class BpeTokenizer extends BaseTokenizer {
  readonly kind = 'bpe' as const;
  /** "left right" (as written in tokenizer.ggml.merges) → rank. */
  private readonly ranks = new Map<string, number>();
  /** Token texts that merging may produce: every type but control and unknown tokens. */
  private readonly pieceIds = new Map<string, number>();
  private readonly wordCache = new Map<string, number[]>();
  private readonly utf8 = new TextEncoder();

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
    const escaped = this.preTokenizer.escapeSpaces ? text.replaceAll(' ', SPACE_MARK) : text;
    for (const word of this.preTokenizer.split(escaped)) {
      // Words are encoded independently, so the count so far is exact for the text so far.
      if (out.length > stopAfter) return;
      let ids = this.wordCache.get(word);
      if (ids === undefined) {
        ids = this.preTokenizer.byteEncoded ? this.encodeWord(toByteLevel(word)) : this.encodeRawWord(word);
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

  /**
   * SentencePiece-style BPE (Gemma 4): the word's UTF-8 characters are merged as they are, and a piece
   * the vocabulary lacks is spelled with `<0xXX>` byte tokens (dropped where there is none, as in llama.cpp).
   */
  private encodeRawWord(word: string): number[] {
    if (this.preTokenizer.wholeNewlineRuns && ONLY_NEWLINES.test(word)) {
      const id = this.vocab.id(word);
      if (id !== undefined) return [id];
    }
    const symbols = mergeSymbols(Array.from(word), (left, right) => this.ranks.get(left + ' ' + right));
    const ids: number[] = [];
    for (const symbol of symbols) {
      const id = this.pieceIds.get(symbol);
      if (id !== undefined) {
        ids.push(id);
        continue;
      }
      for (const byte of this.utf8.encode(symbol)) {
        const byteId = this.vocab.id(`<0x${byte.toString(16).toUpperCase().padStart(2, '0')}>`);
        if (byteId !== undefined) ids.push(byteId);
      }
    }
    return ids;
  }

  protected textTokenBytes(id: number): Uint8Array {
    const text = this.vocab.tokens[id]!;
    if (this.vocab.types[id] === TokenType.Byte) {
      const m = BYTE_TOKEN.exec(text);
      if (m) return Uint8Array.of(parseInt(m[1]!, 16));
    }
    if (this.preTokenizer.escapeSpaces) return this.utf8.encode(text.replaceAll(SPACE_MARK, ' '));
    return fromByteLevel(text);
  }
}
