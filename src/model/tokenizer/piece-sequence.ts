// Turns token ids into the bytes they add to a text, one id at a time. decode() and the streaming
// detokenizer share it so they apply the same two rules:
// - skipSpecial leaves control and unknown tokens out (tokenToPiece without renderSpecial);
// - SentencePiece's prefix space: encode puts a space before text that starts the input or follows a
//   special token, so with `removePrefixSpace` the first piece in those places loses one leading space.
import type { Tokenizer } from './tokenizer.js';
import { TokenType } from './vocabulary.js';

const SPACE = 0x20;

export interface PieceSequenceOptions {
  skipSpecial: boolean;
  /** Undo encode's prefix space (only has an effect when the tokenizer adds one). */
  removePrefixSpace: boolean;
}

export class PieceSequence {
  private readonly removePrefixSpace: boolean;
  private atTextStart = true;

  constructor(private readonly tokenizer: Tokenizer, private readonly opts: PieceSequenceOptions) {
    this.removePrefixSpace = opts.removePrefixSpace && tokenizer.addSpacePrefix;
  }

  next(id: number): Uint8Array {
    const type = this.tokenizer.tokenType(id);
    const piece = this.tokenizer.tokenToPiece(id, !this.opts.skipSpecial);
    if (type === TokenType.Control || type === TokenType.UserDefined || type === TokenType.Unknown) {
      this.atTextStart = true;
      return piece;
    }
    if (piece.length === 0) return piece;
    const strip = this.atTextStart && this.removePrefixSpace && piece[0] === SPACE;
    this.atTextStart = false;
    return strip ? piece.subarray(1) : piece;
  }
}
