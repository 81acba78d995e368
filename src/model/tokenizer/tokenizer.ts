// The Tokenizer interface every vocabulary kind implements, and the options of encode and decode.
import type { StreamingDetokenizer, StreamingDetokenizerOptions } from './streaming-detokenizer.js';
import type { TokenType } from './vocabulary.js';

/** 'spm': SentencePiece-style (tokenizer.ggml.model = llama); 'bpe': byte-level BPE (gpt2). */
export type TokenizerKind = 'spm' | 'bpe';

export interface EncodeOptions {
  /** Add BOS/EOS as the file's tokenizer.ggml.add_bos_token / add_eos_token say. Default false. */
  addSpecial?: boolean;
  /**
   * Recognise the texts of control tokens (e.g. `<|im_start|>`, `<s>`) in the text as those tokens.
   * Default false. User-defined tokens are always recognised, as llama.cpp does.
   */
  parseSpecial?: boolean;
  /**
   * Stop once more than this many ids are out (a prompt past the context needs no full tokenization);
   * the ids are then only a proof of length. BPE stops at the next word, SentencePiece at the next
   * special token (it merges over a whole stretch of text). Default: no limit.
   */
  stopAfter?: number;
}

export interface DecodeOptions {
  /**
   * Leave control and unknown tokens (BOS, EOS, chat markers, <unk>) out of the text, as llama.cpp's
   * token_to_piece does without `special`; generated text is decoded this way. Default false: they are
   * written as their own text. User-defined tokens are text either way; unused ones never are.
   */
  skipSpecial?: boolean;
}

export interface Tokenizer {
  readonly kind: TokenizerKind;
  readonly vocabSize: number;
  /** Token texts as the GGUF stores them (SPM uses `▁` for spaces, byte-level BPE its byte alphabet). */
  readonly tokens: readonly string[];
  readonly bos: number | undefined;
  readonly eos: number | undefined;
  /** End-of-turn token (tokenizer.ggml.eot_token_id), when the file names one. */
  readonly eot: number | undefined;
  readonly addBos: boolean;
  readonly addEos: boolean;
  /** SentencePiece's leading-space rule: a space is put before text that starts the input or follows a special token. */
  readonly addSpacePrefix: boolean;

  encode(text: string, opts?: EncodeOptions): number[];
  /**
   * The text of a token sequence. Bytes that are not valid UTF-8 become U+FFFD. With addSpacePrefix,
   * the space encode put before the first text (and before text after a special token) is removed, so
   * decode(encode(x)) === x. (llama.cpp removes it only when the first id is not BOS, giving
   * " Once upon" for [BOS, ▁Once, ▁upon].) No Hugging Face-style clean-up of spaces before
   * punctuation is done: the text is exactly the tokens' bytes.
   */
  decode(ids: readonly number[], opts?: DecodeOptions): string;
  /**
   * A fresh streaming detokenizer over this vocabulary: push(id) returns only complete text. By default
   * the ids continue a prompt (see StreamingDetokenizer).
   */
  streamDecoder(opts?: StreamingDetokenizerOptions): StreamingDetokenizer;
  /**
   * The raw bytes a token contributes to the text. A control or unknown token contributes its own text
   * when `renderSpecial` is true (the default), nothing when it is false (generated text); a
   * user-defined token always its text, an unused one nothing. The array is shared: do not modify it.
   */
  tokenToPiece(id: number, renderSpecial?: boolean): Uint8Array;
  tokenType(id: number): TokenType;
  /** The id of a token text exactly as stored in the vocabulary, or undefined. */
  tokenId(text: string): number | undefined;
  /** True for EOS, EOT and the other tokens that end a turn (e.g. `<|eot_id|>`, `<|im_end|>`). */
  isEndOfGeneration(id: number): boolean;
}
