// What SentencePiece and BPE tokenizers share: the vocabulary, splitting out special tokens, BOS/EOS,
// decoding, and a cache of token pieces. A subclass only says how plain text becomes ids and what
// bytes one token stands for.
import { PieceSequence } from './piece-sequence.js';
import { SpecialTokenSplitter } from './special-token-splitter.js';
import { StreamingDetokenizer, type StreamingDetokenizerOptions } from './streaming-detokenizer.js';
import type { DecodeOptions, EncodeOptions, Tokenizer, TokenizerKind } from './tokenizer.js';
import { TokenType, type Vocabulary } from './vocabulary.js';

export abstract class BaseTokenizer implements Tokenizer {
  abstract readonly kind: TokenizerKind;
  private readonly splitter: SpecialTokenSplitter;
  private readonly pieces: (Uint8Array | undefined)[];
  private static readonly EMPTY = new Uint8Array(0);
  private readonly utf8Decoder = new TextDecoder('utf-8', { ignoreBOM: true });

  protected constructor(protected readonly vocab: Vocabulary) {
    this.splitter = new SpecialTokenSplitter(vocab);
    this.pieces = new Array(vocab.size);
  }

  get vocabSize(): number { return this.vocab.size; }
  get tokens(): readonly string[] { return this.vocab.tokens; }
  get bos(): number | undefined { return this.vocab.bos; }
  get eos(): number | undefined { return this.vocab.eos; }
  get eot(): number | undefined { return this.vocab.eot; }
  get addBos(): boolean { return this.vocab.addBos; }
  get addEos(): boolean { return this.vocab.addEos; }
  get addSpacePrefix(): boolean { return this.vocab.addSpacePrefix; }

  /** Appends the ids of plain text (no special tokens in it) to `out`; may stop once out.length > stopAfter. */
  protected abstract encodeText(text: string, afterSpecial: boolean, out: number[], stopAfter: number): void;
  /** The bytes a normal or byte token stands for. */
  protected abstract textTokenBytes(id: number): Uint8Array;

  encode(text: string, opts: EncodeOptions = {}): number[] {
    const out: number[] = [];
    const addSpecial = opts.addSpecial ?? false;
    if (addSpecial && this.addBos && this.bos !== undefined) out.push(this.bos);
    // The input's start counts as "after a special token" for SentencePiece's prefix space.
    let afterSpecial = true;
    const stopAfter = opts.stopAfter ?? Infinity;
    for (const fragment of this.splitter.split(text, opts.parseSpecial ?? false)) {
      if (out.length > stopAfter) return out;
      if (typeof fragment === 'number') {
        out.push(fragment);
        afterSpecial = true;
      } else {
        this.encodeText(fragment, afterSpecial, out, stopAfter);
        afterSpecial = false;
      }
    }
    if (addSpecial && this.addEos && this.eos !== undefined) out.push(this.eos);
    return out;
  }

  decode(ids: readonly number[], opts: DecodeOptions = {}): string {
    const sequence = new PieceSequence(this, { skipSpecial: opts.skipSpecial ?? false, removePrefixSpace: true });
    const parts = ids.map((id) => sequence.next(id));
    const bytes = new Uint8Array(parts.reduce((n, p) => n + p.length, 0));
    let at = 0;
    for (const p of parts) {
      bytes.set(p, at);
      at += p.length;
    }
    return this.utf8Decoder.decode(bytes);
  }

  streamDecoder(opts?: StreamingDetokenizerOptions): StreamingDetokenizer {
    return new StreamingDetokenizer(this, opts);
  }

  tokenToPiece(id: number, renderSpecial = true): Uint8Array {
    this.vocab.checkId(id);
    const type = this.vocab.types[id];
    if (!renderSpecial && (type === TokenType.Control || type === TokenType.Unknown)) return BaseTokenizer.EMPTY;
    let piece = this.pieces[id];
    if (piece === undefined) {
      piece = this.renderToken(id, type as TokenType);
      this.pieces[id] = piece;
    }
    return piece;
  }

  /** A token's bytes as llama.cpp's token_to_piece gives them with special tokens rendered. */
  private renderToken(id: number, type: TokenType): Uint8Array {
    switch (type) {
      case TokenType.Control:
      case TokenType.Unknown:
      case TokenType.UserDefined:
        return new TextEncoder().encode(this.vocab.tokens[id]);
      case TokenType.Normal:
      case TokenType.Byte:
        return this.textTokenBytes(id);
      default:
        // Unused and undefined tokens stand for no text (llama.cpp suppresses them like control tokens).
        return BaseTokenizer.EMPTY;
    }
  }

  tokenType(id: number): TokenType {
    return this.vocab.type(id);
  }

  tokenId(text: string): number | undefined {
    return this.vocab.id(text);
  }

  isEndOfGeneration(id: number): boolean {
    return this.vocab.isEndOfGeneration(id);
  }
}
