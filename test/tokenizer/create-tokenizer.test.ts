// Choosing the tokenizer from GGUF metadata, and clear errors for what vserve cannot tokenize.
import assert from 'node:assert/strict';
import { test } from 'node:test';
import { GGUFFile } from '../../src/model/gguf/reader.js';
import { createTokenizer, TokenizerError } from '../../src/model/tokenizer/index.js';
import { bundledModel } from '../paths.js';
import { vocabMetadata } from './vocab-fixtures.js';

const fails = (meta: Map<string, unknown>, pattern: RegExp) =>
  assert.throws(() => createTokenizer(meta as never), (e: unknown) => e instanceof TokenizerError && pattern.test(e.message));

test('a GGUFFile or its metadata map both work', () => {
  const file = GGUFFile.open(bundledModel);
  try {
    assert.deepEqual(createTokenizer(file).encode('Once'), createTokenizer(file.metadata).encode('Once'));
  } finally {
    file.close();
  }
});

test('an unsupported tokenizer model is named, with what is supported', () => {
  for (const model of ['bert', 't5', 'rwkv']) {
    fails(vocabMetadata('llama-spm').set('tokenizer.ggml.model', model), new RegExp(`"${model}".*supported: llama \\(SentencePiece\\), gpt2 \\(byte-level BPE\\)`));
  }
});

test('an unknown BPE pre-tokenizer is named, with the known ones', () => {
  fails(vocabMetadata('gpt-2').set('tokenizer.ggml.pre', 'tekken-9'), /unknown BPE pre-tokenizer "tekken-9".*known: default, .*llama-bpe.*deepseek-v3.*gpt-2.*qwen2.*tekken/);
});

test('missing or malformed tokenizer metadata is a TokenizerError', () => {
  const noModel = vocabMetadata('gpt-2');
  noModel.delete('tokenizer.ggml.model');
  fails(noModel, /tokenizer\.ggml\.model is missing/);
  const noMerges = vocabMetadata('gpt-2');
  noMerges.delete('tokenizer.ggml.merges');
  fails(noMerges, /tokenizer\.ggml\.merges is missing/);
  fails(vocabMetadata('gpt-2').set('tokenizer.ggml.merges', ['Ġt', 'h e']), /merges\[0\] is not a "left right" pair/);
  fails(vocabMetadata('llama-spm').set('tokenizer.ggml.tokens', []), /tokenizer\.ggml\.tokens is missing or is not a non-empty array/);
  fails(vocabMetadata('llama-spm').set('tokenizer.ggml.scores', new Float32Array(10)), /scores has 10 entries but tokenizer\.ggml\.tokens has 32000/);
});

test('special token ids outside the vocabulary are ignored, as llama.cpp does', () => {
  const tok = createTokenizer(vocabMetadata('llama-spm').set('tokenizer.ggml.eos_token_id', 99999));
  assert.equal(tok.eos, undefined);
  assert.deepEqual(tok.encode('Hi', { addSpecial: true }), [1, 6324]);
});
