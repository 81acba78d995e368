// SentencePiece-style tokenizer (tokenizer.ggml.model = "llama"), as llama.cpp runs it: spaces become
// `▁`, a space is put before the text when add_space_prefix is set, the text is split into characters,
// and adjacent symbols are merged highest-score first whenever the merged text is a vocabulary token.
// A symbol left that is not a token is spelled with byte-fallback tokens `<0xXX>` (or <unk>).
import { TokenizerError } from './errors.js';
import { BaseTokenizer } from './base-tokenizer.js';
import { mergeSymbols } from './symbol-merger.js';
import { TokenType, type Vocabulary } from './vocabulary.js';

const SPACE_MARK = '\u2581'; // ▁
const BYTE_TOKEN = /^<0x([0-9A-Fa-f]{2})>$/;

export class SpmTokenizer extends BaseTokenizer {
  readonly kind = 'spm' as const;
  /** Token texts that merging may produce: every type but control, unknown and byte tokens. */
  private readonly pieceIds = new Map<string, number>();
  /** Byte value → id of its `<0xXX>` token, or -1. */
  private readonly byteIds = new Int32Array(256).fill(-1);
  private readonly utf8 = new TextEncoder();

  constructor(vocab: Vocabulary) {
    super(vocab);
    vocab.tokens.forEach((text, id) => {
      const type = vocab.types[id];
      if (type === TokenType.Byte) {
        const m = BYTE_TOKEN.exec(text);
        if (m) this.byteIds[parseInt(m[1]!, 16)] = id;
      } else if (type !== TokenType.Control && type !== TokenType.Unknown) {
        this.pieceIds.set(text, id);
      }
    });
  }

  protected encodeText(text: string, afterSpecial: boolean, out: number[]): void {
    const withPrefix = this.addSpacePrefix && afterSpecial ? ' ' + text : text;
    const escaped = withPrefix.replaceAll(' ', SPACE_MARK);
    const scores = this.vocab.scores;
    // Higher score merges first; the merger pops the lowest rank, so rank by the negated score.
    const symbols = mergeSymbols(Array.from(escaped), (left, right) => {
      const id = this.pieceIds.get(left + right);
      return id === undefined ? undefined : -scores[id]!;
    });
    for (const symbol of symbols) {
      const id = this.pieceIds.get(symbol);
      if (id !== undefined) out.push(id);
      else this.encodeBytes(symbol, out);
    }
  }

  private encodeBytes(symbol: string, out: number[]): void {
    for (const byte of this.utf8.encode(symbol)) {
      const id = this.byteIds[byte]!;
      if (id >= 0) out.push(id);
      else if (this.vocab.unk !== undefined) out.push(this.vocab.unk);
      else throw new TokenizerError(`cannot encode byte 0x${byte.toString(16)}: the vocabulary has neither <0x..> byte tokens nor an unknown token`);
    }
  }

  protected textTokenBytes(id: number): Uint8Array {
    const text = this.vocab.tokens[id]!;
    if (this.vocab.types[id] === TokenType.Byte) {
      const m = BYTE_TOKEN.exec(text);
      if (m) return Uint8Array.of(parseInt(m[1]!, 16));
    }
    return this.utf8.encode(text.replaceAll(SPACE_MARK, ' '));
  }
}
