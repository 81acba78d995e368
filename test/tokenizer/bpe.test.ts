// Byte-level BPE: the pre-tokenizers vserve's Llama-family targets use (llama3, qwen2) beyond those the
// shared vectors cover. The gpt-2 vocabulary is run with another tokenizer.ggml.pre; expected ids are
// llama.cpp's (via node-llama-cpp 3.22.1) for the same metadata.
import assert from 'node:assert/strict';
import { test } from 'node:test';
import { createTokenizer } from '../../src/model/tokenizer/index.js';
import { preTokenizerFor } from '../../src/model/tokenizer/pre-tokenizer.js';
import { loadTokenizer, vocabMetadata } from './vocab-fixtures.js';

const TEXT = "Hello world! I'M 1234567 here's\n\n\t  ok 你好";

const gpt2With = (pre: string) => createTokenizer(vocabMetadata('gpt-2').set('tokenizer.ggml.pre', pre));

test('gpt-2: vocabulary facts from the GGUF', () => {
  const tok = loadTokenizer('gpt-2');
  assert.equal(tok.kind, 'bpe');
  assert.equal(tok.vocabSize, 50257);
  assert.equal(tok.bos, 50256);
  assert.equal(tok.eos, 50256);
  assert.equal(tok.addBos, false);
  assert.equal(tok.addSpacePrefix, false);
  assert.ok(tok.isEndOfGeneration(50256));
  assert.equal(tok.tokens[995], 'Ġworld');
  assert.equal(new TextDecoder().decode(tok.tokenToPiece(995)), ' world');
});

test('llama3 pre-tokenizer: digits in groups of three, case-insensitive contractions', () => {
  const pre = preTokenizerFor('llama-bpe');
  assert.deepEqual(pre.split(TEXT), ['Hello', ' world', '!', ' I', "'M", ' ', '123', '456', '7', ' here', "'s", '\n\n', '\t ', ' ok', ' 你好']);
  const tok = gpt2With('llama-bpe');
  assert.deepEqual(tok.encode(TEXT), [15496, 995, 0, 314, 6, 44, 220, 10163, 29228, 22, 994, 338, 628, 197, 220, 12876, 220, 19526, 254, 25001, 121]);
  assert.equal(tok.addBos, true, 'llama3 vocabularies add BOS unless the file says otherwise');
});

test('qwen2 pre-tokenizer: one digit per piece', () => {
  assert.deepEqual(preTokenizerFor('qwen2').split('x 2024!'), ['x', ' ', '2', '0', '2', '4', '!']);
  assert.deepEqual(gpt2With('qwen2').encode(TEXT), [15496, 995, 0, 314, 6, 44, 220, 16, 17, 18, 19, 20, 21, 22, 994, 338, 628, 197, 220, 12876, 220, 19526, 254, 25001, 121]);
});

test('default pre-tokenizer: llama.cpp\'s four-pass split', () => {
  assert.deepEqual(gpt2With('default').encode(TEXT), [15496, 995, 0, 314, 6, 44, 220, 10163, 29228, 22, 994, 6, 82, 628, 197, 220, 12876, 220, 19526, 254, 25001, 121]);
  const missing = vocabMetadata('gpt-2');
  missing.delete('tokenizer.ggml.pre');
  assert.deepEqual(createTokenizer(missing).encode(TEXT), gpt2With('default').encode(TEXT), 'no pre means default');
});

test('whitespace is Unicode White_Space, as in llama.cpp (U+0085 is, U+FEFF is not)', () => {
  // With JS's own \s the two would swap roles: "\u0085\u0085" would be one punctuation-like piece and
  // " \ufeff" a run of spaces.
  const text = 'a \ufeffb\u0085\u0085c';
  assert.deepEqual(preTokenizerFor('gpt-2').split(text), ['a', ' \ufeff', 'b', '\u0085', '\u0085', 'c']);
  assert.deepEqual(loadTokenizer('gpt-2').encode(text), [64, 27332, 119, 123, 65, 126, 227, 126, 227, 66]);
});

test('byte-level BPE round-trips any text, including invalid surrogates as U+FFFD', () => {
  const tok = gpt2With('llama-bpe');
  const text = 'naïve café — 🦙🦙 \u0000\u007f\r\n 𝔘𝔫𝔦𝔠𝔬𝔡𝔢 ';
  assert.equal(tok.decode(tok.encode(text)), text);
  assert.equal(tok.decode(tok.encode('a\ud800b')), 'a\ufffdb');
});
