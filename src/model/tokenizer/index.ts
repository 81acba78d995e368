// Tokenizers (SentencePiece and byte-level BPE from GGUF metadata) and streaming detokenization.
export type { DecodeOptions, EncodeOptions, Tokenizer, TokenizerKind } from './tokenizer.js';
export { TokenType, type GGUFMetadata } from './vocabulary.js';
export { TokenizerError } from './errors.js';
export { createTokenizer, SUPPORTED_TOKENIZER_MODELS } from './create-tokenizer.js';
export { SUPPORTED_PRE_TOKENIZERS } from './pre-tokenizer.js';
export { StreamingDetokenizer, type StreamingDetokenizerOptions } from './streaming-detokenizer.js';
