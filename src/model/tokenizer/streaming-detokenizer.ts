// Streaming detokenization: token ids go in one at a time, and only complete text comes out. A UTF-8
// character can be split across tokens (byte-fallback tokens, byte-level BPE), so the bytes of an
// unfinished character wait for the tokens that complete it; flush() gives up on them (U+FFFD).
//
// The SentencePiece prefix space: by default the ids are taken to continue a prompt, and each token
// keeps its leading space, as llama.cpp's token_to_piece gives it during generation (" upon" after
// "Once" must keep its space). With `startOfText: true` the ids are taken as a whole text and the
// output is exactly decode(ids), prefix space removed.
import { PieceSequence } from './piece-sequence.js';
import type { Tokenizer } from './tokenizer.js';

export interface StreamingDetokenizerOptions {
  /** Leave control and unknown tokens out of the text (generated text). Default false, as in decode(). */
  skipSpecial?: boolean;
  /** The ids begin a text rather than continue one. Default false. */
  startOfText?: boolean;
}

export class StreamingDetokenizer {
  private readonly pieces: PieceSequence;
  // WHATWG's streaming decoder holds back incomplete sequences and reports invalid ones exactly as a
  // one-shot decode of all the bytes would; ignoreBOM keeps a leading U+FEFF token as text.
  private readonly utf8 = new TextDecoder('utf-8', { ignoreBOM: true });

  constructor(tokenizer: Tokenizer, opts: StreamingDetokenizerOptions = {}) {
    this.pieces = new PieceSequence(tokenizer, {
      skipSpecial: opts.skipSpecial ?? false,
      removePrefixSpace: opts.startOfText ?? false,
    });
  }

  /** Adds one token; returns the text it completes (often '', never part of a character). */
  push(id: number): string {
    return this.utf8.decode(this.pieces.next(id), { stream: true });
  }

  /** Ends the stream: returns the text still held back, with unfinished characters as U+FFFD. */
  flush(): string {
    return this.utf8.decode();
  }
}
