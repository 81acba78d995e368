// The SentencePiece-style tokenizer on the bundled stories260K vocabulary (512 tokens). Expected ids
// are llama.cpp's (via node-llama-cpp 3.22.1) for the same file.
import assert from 'node:assert/strict';
import { test } from 'node:test';
import { TokenizerError } from '../../src/model/tokenizer/index.js';
import { loadTokenizer, vocabMetadata } from './vocab-fixtures.js';
import { createTokenizer } from '../../src/model/tokenizer/index.js';

const stories = loadTokenizer('stories260K');

test('stories260K: vocabulary facts from the GGUF', () => {
  assert.equal(stories.kind, 'spm');
  assert.equal(stories.vocabSize, 512);
  assert.equal(stories.bos, 1);
  assert.equal(stories.eos, 2);
  assert.equal(stories.addBos, true);
  assert.equal(stories.addEos, false);
  assert.equal(stories.addSpacePrefix, true);
  assert.equal(stories.tokens[1], '<s>');
  assert.equal(stories.tokenId('▁Once'), 403);
  assert.ok(stories.isEndOfGeneration(2));
  assert.ok(!stories.isEndOfGeneration(1));
});

test('stories260K: BOS + "Once upon a time"', () => {
  const ids = stories.encode('Once upon a time', { addSpecial: true });
  assert.deepEqual(ids, [1, 403, 407, 261, 378]);
  assert.deepEqual(ids.map((id) => stories.tokens[id]), ['<s>', '▁Once', '▁upon', '▁a', '▁time']);
  assert.deepEqual(stories.encode('Once upon a time'), [403, 407, 261, 378], 'no BOS unless addSpecial');
  assert.equal(stories.decode(ids, { skipSpecial: true }), 'Once upon a time');
  assert.equal(stories.decode(ids), '<s>Once upon a time');
  assert.equal(new TextDecoder().decode(stories.tokenToPiece(403)), ' Once');
});

test('stories260K: the leading-space rule', () => {
  // The prefix space is added to the text, so a text that starts with a space gets a lone "▁" first.
  assert.deepEqual(stories.encode(' there was'), [410, 383, 286]);
  assert.equal(stories.decode([410, 383, 286]), ' there was');
  assert.equal(stories.decode([383, 286]), 'there was');
  assert.deepEqual(stories.encode(''), []);
  assert.deepEqual(stories.encode('', { addSpecial: true }), [1]);
});

test('stories260K: characters outside the vocabulary fall back to <0xXX> byte tokens', () => {
  const ids = stories.encode('héllo 😀');
  assert.deepEqual(ids, [270, 485, 306, 414, 410, 243, 162, 155, 131]);
  assert.deepEqual(ids.slice(5).map((id) => stories.tokens[id]), ['<0xF0>', '<0x9F>', '<0x98>', '<0x80>']);
  assert.deepEqual([...stories.tokenToPiece(243)], [0xf0]);
  assert.equal(stories.decode(ids), 'héllo 😀');
});

test('add_space_prefix = false puts no space before the text', () => {
  const tok = createTokenizer(vocabMetadata('stories260K').set('tokenizer.ggml.add_space_prefix', false));
  const ids = tok.encode('Once');
  assert.ok(!tok.tokens[ids[0]!]!.startsWith('▁'));
  assert.equal(tok.decode(tok.encode(' Once upon')), ' Once upon');
});

test('llama-spm: a few KB of text encodes and round-trips', () => {
  const tok = loadTokenizer('llama-spm');
  const text = 'The quick brown fox jumps over the lazy dog, naïvely. 日本語も少し。\n'.repeat(80);
  const ids = tok.encode(text);
  assert.ok(ids.length > 1000);
  assert.equal(tok.decode(ids), text);
});

test('decode rejects ids outside the vocabulary', () => {
  assert.throws(() => stories.decode([1, 512]), (e: unknown) => e instanceof TokenizerError && /512 is out of range/.test(e.message));
  assert.throws(() => stories.tokenToPiece(-1), TokenizerError);
});
