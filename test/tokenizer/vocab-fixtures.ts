// Vocabularies for tokenizer tests: the shared llama.cpp vocab files and the bundled model, loaded as
// tokenizers or as metadata maps that a test may change (add special tokens, switch pre-tokenizer).
import { GGUFFile } from '../../src/model/gguf/reader.js';
import type { GGUFValue } from '../../src/model/gguf/types.js';
import { createTokenizer, type Tokenizer, type TokenType } from '../../src/model/tokenizer/index.js';
import { bundledModel, vocabFile } from '../paths.js';

const pathOf = (name: string) => (name === 'stories260K' ? bundledModel : vocabFile(name));

/** A fresh copy of a vocabulary's metadata ('stories260K' is the bundled model). */
export function vocabMetadata(name: string): Map<string, GGUFValue> {
  const file = GGUFFile.open(pathOf(name));
  try {
    return new Map(file.metadata);
  } finally {
    file.close();
  }
}

export function loadTokenizer(name: string): Tokenizer {
  return createTokenizer(vocabMetadata(name));
}

export interface AddedToken {
  id: number;
  text: string;
  type: TokenType;
}

/** The metadata with some tokens replaced (the ids of rare tokens are reused for test tokens). */
export function withTokens(meta: Map<string, GGUFValue>, added: readonly AddedToken[]): Map<string, GGUFValue> {
  const tokens = [...(meta.get('tokenizer.ggml.tokens') as string[])];
  const types = Int32Array.from(meta.get('tokenizer.ggml.token_type') as Int32Array);
  for (const t of added) {
    tokens[t.id] = t.text;
    types[t.id] = t.type;
  }
  return new Map(meta).set('tokenizer.ggml.tokens', tokens).set('tokenizer.ggml.token_type', types);
}
