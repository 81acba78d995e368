// The error a tokenizer raises for a vocabulary it cannot use: an unsupported tokenizer model or
// pre-tokenizer, missing or malformed tokenizer metadata, or a token id outside the vocabulary.

export class TokenizerError extends Error {
  constructor(message: string) {
    super(message);
    this.name = 'TokenizerError';
  }
}
