// llama.cpp's tokenizer test vectors (test/fixtures/vocab/ggml-vocab-*.gguf.inp/.out): every string must
// encode to exactly the expected ids (no BOS, special-token parsing on, as llama.cpp's test runs
// them), and decode back to itself where the tokenizer is lossless.
import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import { test } from 'node:test';
import { vocabFile } from '../paths.js';
import { loadTokenizer } from './vocab-fixtures.js';

const SEPARATOR = '\n__ggml_vocab_test__\n';
const VOCABS = ['llama-spm', 'gpt-2', 'falcon', 'starcoder', 'mpt'];

interface Vector {
  text: string;
  ids: number[];
}

function loadVectors(name: string): Vector[] {
  const inputs = readFileSync(`${vocabFile(name)}.inp`, 'utf8').split(SEPARATOR);
  const outputs = readFileSync(`${vocabFile(name)}.out`, 'utf8').split('\n');
  // The input file ends with a separator and the output file with a newline: one empty entry each.
  assert.equal(inputs.pop(), '');
  assert.equal(outputs.pop(), '');
  assert.equal(inputs.length, outputs.length, `${name}: .inp and .out disagree on the number of strings`);
  return inputs.map((text, i) => ({ text, ids: outputs[i]!.split(' ').filter((s) => s !== '').map(Number) }));
}

const show = (ids: readonly number[]) => `[${ids.join(' ')}]`;

for (const name of VOCABS) {
  test(`${name}: every llama.cpp test vector encodes to the expected ids`, () => {
    const tokenizer = loadTokenizer(name);
    const vectors = loadVectors(name);
    assert.ok(vectors.length > 40);
    const failures = vectors
      .map((v) => ({ ...v, got: tokenizer.encode(v.text, { addSpecial: false, parseSpecial: true }) }))
      .filter((v) => show(v.got) !== show(v.ids))
      .map((v) => `  ${JSON.stringify(v.text)}\n    expected ${show(v.ids)}\n    got      ${show(v.got)}`);
    assert.equal(failures.length, 0, `${failures.length} of ${vectors.length} strings differ:\n${failures.join('\n')}`);
  });

  test(`${name}: decode(encode(text)) gives the text back`, () => {
    const tokenizer = loadTokenizer(name);
    // SentencePiece without byte-level coverage could lose text, but llama-spm has byte fallback and
    // every other vocabulary here is byte-level BPE: all of them are lossless on any string.
    const failures = loadVectors(name)
      .map(({ text }) => ({ text, back: tokenizer.decode(tokenizer.encode(text)) }))
      .filter(({ text, back }) => back !== text)
      .map(({ text, back }) => `  ${JSON.stringify(text)} came back as ${JSON.stringify(back)}`);
    assert.equal(failures.length, 0, failures.join('\n'));
  });
}
