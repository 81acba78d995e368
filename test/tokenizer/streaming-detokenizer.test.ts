// Streaming detokenization: text comes out only when it is complete, never part of a character.
import assert from 'node:assert/strict';
import { test } from 'node:test';
import { StreamingDetokenizer, type Tokenizer } from '../../src/model/tokenizer/index.js';
import { loadTokenizer } from './vocab-fixtures.js';

const stories = loadTokenizer('stories260K');
const gpt2 = loadTokenizer('gpt-2');

/** Every chunk the stream gives, plus what flush() gives as the last. */
function stream(tokenizer: Tokenizer, ids: readonly number[], opts?: { startOfText?: boolean; skipSpecial?: boolean }): string[] {
  const detok = new StreamingDetokenizer(tokenizer, opts);
  const chunks = ids.map((id) => detok.push(id));
  chunks.push(detok.flush());
  return chunks;
}

/** No lone surrogate: a chunk that ends inside a character would have one (or a U+FFFD). */
function isWellFormed(s: string): boolean {
  return !/[\ud800-\udbff](?![\udc00-\udfff])|(?<![\ud800-\udbff])[\udc00-\udfff]/.test(s);
}

test('an emoji spelled by four byte-fallback tokens comes out whole, on its last byte', () => {
  const ids = stories.encode('a 😀 b'); // ▁a ▁ <0xF0> <0x9F> <0x98> <0x80> ▁b
  const chunks = stream(stories, ids, { startOfText: true });
  assert.deepEqual(chunks, ['a', ' ', '', '', '', '😀', ' b', '']);
});

test('CJK and emoji split across byte-level BPE tokens never come out in part', () => {
  const text = '我想在apple工作 🦙🚀 😶‍🌫️ កាន់តែ';
  const ids = gpt2.encode(text);
  const chunks = stream(gpt2, ids);
  assert.ok(chunks.includes(''), 'some tokens end inside a character and give nothing yet');
  for (const chunk of chunks) {
    assert.ok(isWellFormed(chunk) && !chunk.includes('\ufffd'), `partial character in ${JSON.stringify(chunk)}`);
  }
  assert.equal(chunks.join(''), text);
});

test('streamed text equals decode() for every shared test string (startOfText)', () => {
  const texts = ['Hello world', ' this is 🦙.cpp', 'нещо на Български', 'កាន់តែពិសេសអាចខលចេញ', '🚀 (normal) 😶‍🌫️ ✅', '   Hello\n    Hello'];
  for (const tok of [stories, gpt2, loadTokenizer('llama-spm')]) {
    for (const text of texts) {
      const ids = tok.encode(text, { addSpecial: true });
      const chunks = stream(tok, ids, { startOfText: true });
      assert.equal(chunks.join(''), tok.decode(ids), `${tok.kind}: ${JSON.stringify(text)}`);
      assert.ok(chunks.every((c) => isWellFormed(c) && !c.includes('\ufffd')), JSON.stringify(chunks));
    }
  }
});

test('a continuation keeps the SentencePiece leading space of its first token (llama.cpp token_to_piece)', () => {
  const prompt = stories.encode('Once upon a time', { addSpecial: true });
  const generated = stories.encode(' there was'.slice(1)); // ▁there ▁was, as a model would generate them
  assert.deepEqual(stream(stories, generated), [' there', ' was', '']);
  assert.equal(stream(stories, generated, { startOfText: true }).join(''), 'there was');
  assert.equal(stories.decode(prompt, { skipSpecial: true }) + stream(stories, generated).join(''), 'Once upon a time there was');
});

test('flush() ends an unfinished character as U+FFFD; invalid bytes become U+FFFD in place', () => {
  const byte = (b: number) => stories.tokenId(`<0x${b.toString(16).toUpperCase().padStart(2, '0')}>`)!;
  assert.deepEqual(stream(stories, [byte(0xf0), byte(0x9f)]), ['', '', '\ufffd']);
  assert.deepEqual(stream(stories, [byte(0xff), stories.tokenId('▁a')!]), ['\ufffd', ' a', '']);
  assert.equal(stories.decode([byte(0xf0), byte(0x9f)]), '\ufffd');
});

test('skipSpecial leaves BOS and EOS out of the stream', () => {
  const ids = stories.encode('Once upon', { addSpecial: true }).concat(stories.eos!);
  assert.deepEqual(stream(stories, ids, { skipSpecial: true }), ['', ' Once', ' upon', '', '']);
  assert.deepEqual(stream(stories, ids, { skipSpecial: true, startOfText: true }), ['', 'Once', ' upon', '', '']);
  assert.deepEqual(stream(stories, ids), ['<s>', ' Once', ' upon', '</s>', '']);
});

test('tokenizer.streamDecoder() gives independent streams', () => {
  const a = gpt2.streamDecoder();
  const b = gpt2.streamDecoder();
  const [first, second] = gpt2.encode('我'); // two byte-level tokens
  assert.equal(a.push(first!), '');
  assert.equal(b.push(gpt2.encode('x')[0]!), 'x');
  assert.equal(a.push(second!), '我');
});
