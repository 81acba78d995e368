// Every BPE pre-tokenizer llama.cpp knows gives llama.cpp's token ids: the gpt-2 vocabulary is run
// with each tokenizer.ggml.pre name over texts that tell the presets apart. The expected ids were
// recorded from llama.cpp by record-pre-tokenizers.ts.
import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { test } from 'node:test';
import { createTokenizer, SUPPORTED_PRE_TOKENIZERS } from '../../src/model/tokenizer/index.js';
import { repoRoot } from '../paths.js';
import { vocabMetadata } from './vocab-fixtures.js';

interface PreTokenizerFixture {
  vocab: string;
  texts: string[];
  groups: { names: string[]; ids: (string | null)[] }[];
}

const fixture = JSON.parse(
  readFileSync(join(repoRoot, 'test', 'fixtures', 'tokenizer', 'pre-tokenizers.json'), 'utf8'),
) as PreTokenizerFixture;

test('the fixture covers every pre-tokenizer name vserve knows', () => {
  const recorded = fixture.groups.flatMap((g) => g.names).sort();
  assert.deepEqual(recorded, [...SUPPORTED_PRE_TOKENIZERS].sort());
});

for (const group of fixture.groups) {
  for (const name of group.names) {
    test(`pre-tokenizer "${name}" gives llama.cpp's ids`, () => {
      const tokenizer = createTokenizer(vocabMetadata(fixture.vocab).set('tokenizer.ggml.pre', name));
      fixture.texts.forEach((text, i) => {
        const expected = group.ids[i];
        // null: llama.cpp itself aborts on this text with this pre-tokenizer.
        if (expected === null || expected === undefined) return;
        const want = expected === '' ? [] : expected.split(' ').map(Number);
        assert.deepEqual(tokenizer.encode(text), want, `text ${i}: ${JSON.stringify(text)}`);
      });
    });
  }
}
