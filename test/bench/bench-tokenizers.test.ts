// The qwen2-bpe stand-in tokenizer of benchmark models: Qwen2's size and special ids around GPT-2's
// tokens, every text distinct (llama.cpp maps texts to ids), and text that still round-trips.
import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import { test } from 'node:test';
import { benchTokenizerMetadata } from '../../bench/bench-tokenizers.js';
import { createTokenizer } from '../../src/model/tokenizer/create-tokenizer.js';
import { TokenType } from '../../src/model/tokenizer/vocabulary.js';
import { vocabFile } from '../paths.js';

const QWEN_VOCAB = 151936;
const meta = benchTokenizerMetadata('qwen2-bpe', QWEN_VOCAB);
const tokens = meta.get('tokenizer.ggml.tokens') as string[];
const types = meta.get('tokenizer.ggml.token_type') as Int32Array;

test('qwen2-bpe: 151936 distinct tokens, regular ones below Qwen2\'s specials and unused padding after', () => {
  assert.equal(tokens.length, QWEN_VOCAB);
  assert.equal(types.length, QWEN_VOCAB);
  assert.equal(new Set(tokens).size, QWEN_VOCAB);
  assert.deepEqual(tokens.slice(151643, 151646), ['<|endoftext|>', '<|im_start|>', '<|im_end|>']);
  for (let id = 0; id < QWEN_VOCAB; id++) {
    const expected = id < 151643 ? TokenType.Normal : id < 151646 ? TokenType.Control : TokenType.Unused;
    if (types[id] !== expected) assert.fail(`token ${id} (${tokens[id]}) has type ${types[id]}, expected ${expected}`);
  }
  assert.equal(meta.get('tokenizer.ggml.pre'), 'qwen2');
  assert.equal(meta.get('tokenizer.ggml.bos_token_id'), 151643);
  assert.equal(meta.get('tokenizer.ggml.eos_token_id'), 151643);
});

test('qwen2-bpe: text encodes to GPT-2 tokens, round-trips, and Qwen2\'s markers are its special tokens', () => {
  const tok = createTokenizer(meta);
  assert.equal(tok.vocabSize, QWEN_VOCAB);
  assert.equal(tok.addBos, false);
  const texts = readFileSync(`${vocabFile('gpt-2')}.inp`, 'utf8').split('\n__ggml_vocab_test__\n');
  for (const text of texts) {
    const ids = tok.encode(text);
    assert.ok(ids.every((id) => id < 50256), `${JSON.stringify(text)} encodes past GPT-2's tokens: ${ids.join(' ')}`);
    assert.equal(tok.decode(ids), text);
  }
  assert.deepEqual(tok.encode('<|im_start|>user<|im_end|>', { parseSpecial: true }), [151644, 7220, 151645]);
  assert.ok(tok.isEndOfGeneration(151643));
  assert.ok(tok.isEndOfGeneration(151645));
});

test('llama-spm: the fixture\'s tokenizer, only at its own size', () => {
  assert.equal((benchTokenizerMetadata('llama-spm', 32000).get('tokenizer.ggml.tokens') as string[]).length, 32000);
  assert.throws(() => benchTokenizerMetadata('llama-spm', 32001), /llama-spm tokenizer has 32000 tokens/);
  assert.throws(() => benchTokenizerMetadata('qwen2-bpe', 100000), /needs at least 151646 tokens/);
});
