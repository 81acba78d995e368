// Control and user-defined tokens in text. Test vocabularies reuse rare ids for chat tokens:
// control <|im_start|> and <|im_end|>, user-defined <tool> (and "  " in the BPE one). Expected ids are
// llama.cpp's (via node-llama-cpp 3.22.1) for the same metadata.
import assert from 'node:assert/strict';
import { test } from 'node:test';
import { createTokenizer, TokenType } from '../../src/model/tokenizer/index.js';
import { vocabMetadata, withTokens } from './vocab-fixtures.js';

const spm = createTokenizer(withTokens(vocabMetadata('llama-spm'), [
  { id: 31990, text: '<|im_start|>', type: TokenType.Control },
  { id: 31991, text: '<|im_end|>', type: TokenType.Control },
  { id: 31992, text: '<tool>', type: TokenType.UserDefined },
]));
const bpe = createTokenizer(withTokens(vocabMetadata('gpt-2').set('tokenizer.ggml.pre', 'llama-bpe'), [
  { id: 50200, text: '<|im_start|>', type: TokenType.Control },
  { id: 50201, text: '<|im_end|>', type: TokenType.Control },
  { id: 50202, text: '<tool>', type: TokenType.UserDefined },
  { id: 50203, text: '  ', type: TokenType.UserDefined },
]));

test('SPM: control tokens are recognised only with parseSpecial; text after one gets the prefix space', () => {
  const text = '<|im_start|>user\nHi there<|im_end|>';
  assert.deepEqual(spm.encode(text, { parseSpecial: true }), [31990, 1404, 13, 18567, 727, 31991]);
  assert.equal(spm.tokens[1404], '▁user');
  assert.deepEqual(spm.encode(text), [529, 29989, 326, 29918, 2962, 29989, 29958, 1792, 13, 18567, 727, 29966, 29989, 326, 29918, 355, 29989, 29958]);
  assert.equal(spm.decode(spm.encode(text, { parseSpecial: true })), text);
  assert.equal(spm.decode(spm.encode(text)), text);
  assert.equal(spm.decode(spm.encode(text, { parseSpecial: true }), { skipSpecial: true }), 'user\nHi there');
});

test('SPM: user-defined tokens are always recognised', () => {
  assert.deepEqual(spm.encode('a<tool>b'), [263, 31992, 289]);
  assert.deepEqual(spm.encode('a<tool>b', { parseSpecial: true }), [263, 31992, 289]);
  assert.equal(spm.decode([263, 31992, 289]), 'a<tool>b');
  assert.equal(spm.decode([263, 31992, 289], { skipSpecial: true }), 'a<tool>b', 'user-defined tokens are text');
});

test('BPE: control and user-defined tokens', () => {
  const text = '<|im_start|>user\nHi  there<|im_end|>';
  assert.deepEqual(bpe.encode(text, { parseSpecial: true }), [50200, 7220, 198, 17250, 50203, 8117, 50201]);
  assert.deepEqual(bpe.encode(text), [27, 91, 320, 62, 9688, 91, 29, 7220, 198, 17250, 50203, 8117, 27, 91, 320, 62, 437, 91, 29]);
  assert.equal(bpe.decode(bpe.encode(text, { parseSpecial: true })), text);
  assert.equal(bpe.decode(bpe.encode(text, { parseSpecial: true }), { skipSpecial: true }), 'user\nHi  there');
});

test('the longer of two overlapping special texts wins', () => {
  const tok = createTokenizer(withTokens(vocabMetadata('gpt-2'), [
    { id: 50200, text: '<|a|>', type: TokenType.Control },
    { id: 50201, text: '<|a|><|b|>', type: TokenType.Control },
    { id: 50202, text: '<|b|>', type: TokenType.Control },
  ]));
  assert.deepEqual(tok.encode('<|a|><|b|><|b|>', { parseSpecial: true }), [50201, 50202]);
});

test('addSpecial adds BOS and EOS as the file asks', () => {
  const meta = vocabMetadata('llama-spm').set('tokenizer.ggml.add_eos_token', true);
  const tok = createTokenizer(meta);
  assert.deepEqual(tok.encode('Hello', { addSpecial: true }), [1, 15043, 2]);
  assert.equal(tok.decode([1, 15043, 2], { skipSpecial: true }), 'Hello');
  assert.equal(tok.decode([1, 15043, 2]), '<s>Hello</s>');
});

test('end-of-generation tokens: EOS, EOT and well-known end-of-turn texts', () => {
  assert.ok(bpe.isEndOfGeneration(50201), '<|im_end|>');
  assert.ok(!bpe.isEndOfGeneration(50200), '<|im_start|>');
  assert.equal(bpe.eot, 50201, 'EOT guessed from <|im_end|> when the file names none');
  const tok = createTokenizer(withTokens(vocabMetadata('llama-spm'), [
    { id: 31990, text: '<|eot_id|>', type: TokenType.Normal },
  ]).set('tokenizer.ggml.eot_token_id', 31990));
  assert.equal(tok.eot, 31990);
  assert.ok(tok.isEndOfGeneration(31990) && tok.isEndOfGeneration(2));
  assert.equal(tok.tokenType(31990), TokenType.Control, 'end-of-turn texts become control tokens, as in llama.cpp');
});

test('generated text (skipSpecial / renderSpecial false) has no control, unknown or unused tokens, as llama.cpp\'s token_to_piece', () => {
  const tok = createTokenizer(withTokens(vocabMetadata('llama-spm'), [{ id: 31993, text: '<unused0>', type: TokenType.Unused }]));
  const ids = [1, 15043, 0, 2, 31993, 3186];
  // decode() drops the prefix space encode would put after a special token; the stream keeps spaces.
  assert.equal(tok.decode(ids), '<s>Hello<unk></s>world');
  assert.equal(tok.decode(ids, { skipSpecial: true }), 'Helloworld');
  assert.deepEqual([1, 0, 2, 31993].map((id) => tok.tokenToPiece(id, false).length), [0, 0, 0, 0]);
  assert.equal(tok.tokenToPiece(31993).length, 0, 'an unused token is never text');
  const stream = tok.streamDecoder({ skipSpecial: true });
  assert.equal(ids.map((id) => stream.push(id)).join('') + stream.flush(), ' Hello world');
  assert.equal(spm.decode([263, 31990, 31992, 289], { skipSpecial: true }), 'a<tool>b', 'user-defined tokens stay text');
});
