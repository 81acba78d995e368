// Builds the tokenizer a GGUF file describes, chosen by tokenizer.ggml.model.
import { GGUFFile } from '../gguf/reader.js';
import { BpeTokenizer } from './bpe-tokenizer.js';
import { TokenizerError } from './errors.js';
import { preTokenizerFor } from './pre-tokenizer.js';
import { SpmTokenizer } from './spm-tokenizer.js';
import type { Tokenizer } from './tokenizer.js';
import { Vocabulary, type GGUFMetadata } from './vocabulary.js';

export const SUPPORTED_TOKENIZER_MODELS = ['llama (SentencePiece)', 'gpt2 (byte-level BPE)'] as const;

/** The tokenizer of a GGUF file (or of its metadata map). Throws TokenizerError for what it cannot run. */
export function createTokenizer(source: GGUFFile | GGUFMetadata): Tokenizer {
  const meta = source instanceof GGUFFile ? source.metadata : source;
  const model = meta.get('tokenizer.ggml.model');
  if (model === undefined) {
    throw new TokenizerError('the file has no tokenizer (tokenizer.ggml.model is missing)');
  }
  switch (model) {
    case 'llama':
      return new SpmTokenizer(new Vocabulary(meta, { addBos: true, addSpacePrefix: true }));
    case 'gpt2': {
      const pre = meta.get('tokenizer.ggml.pre');
      const preTokenizer = preTokenizerFor(typeof pre === 'string' ? pre : undefined);
      const merges = meta.get('tokenizer.ggml.merges');
      if (!Array.isArray(merges)) {
        throw new TokenizerError('tokenizer.ggml.merges is missing or is not an array of strings (required by gpt2 tokenizers)');
      }
      // llama.cpp never puts a prefix space before BPE text. GLM-4 files name a BOS that is never used.
      const vocabMeta = preTokenizer.noBos ? withoutKey(meta, 'tokenizer.ggml.bos_token_id') : meta;
      const vocab = new Vocabulary(vocabMeta, { addBos: preTokenizer.addBosByDefault, addSpacePrefix: false });
      return new BpeTokenizer(vocab, merges as string[], preTokenizer);
    }
    default:
      throw new TokenizerError(
        `unsupported tokenizer model ${JSON.stringify(model)} (tokenizer.ggml.model); supported: ${SUPPORTED_TOKENIZER_MODELS.join(', ')}`,
      );
  }
}

function withoutKey(meta: GGUFMetadata, key: string): GGUFMetadata {
  const copy = new Map(meta);
  copy.delete(key);
  return copy;
}
