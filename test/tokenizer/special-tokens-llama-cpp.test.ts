// Special tokens against llama.cpp: texts that spell control tokens are plain text unless special
// parsing is asked for, user-defined tokens always match, and generated text (skipSpecial) drops the
// control tokens. Expected values were recorded from llama.cpp by record-special-tokens.ts.
import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { test } from 'node:test';
import { createTokenizer, TokenType } from '../../src/model/tokenizer/index.js';
import { repoRoot } from '../paths.js';
import { SPECIAL_TOKEN_VOCABS } from './special-token-vocabs.js';

interface SpecialTokenFixture {
  results: Record<string, { text: string; plain: number[]; parsed: number[]; generatedText: string }[]>;
}

const fixture = JSON.parse(
  readFileSync(join(repoRoot, 'test', 'fixtures', 'tokenizer', 'special-tokens.json'), 'utf8'),
) as SpecialTokenFixture;

for (const [name, cases] of Object.entries(fixture.results)) {
  const tokenizer = createTokenizer(SPECIAL_TOKEN_VOCABS[name]!());
  test(`${name}: ids with and without special parsing are llama.cpp's`, () => {
    for (const c of cases) {
      assert.deepEqual(tokenizer.encode(c.text), c.plain, `plain: ${JSON.stringify(c.text)}`);
      assert.deepEqual(tokenizer.encode(c.text, { parseSpecial: true }), c.parsed, `parsed: ${JSON.stringify(c.text)}`);
    }
  });
  test(`${name}: generated text drops control tokens as llama.cpp's detokenize without special`, () => {
    for (const c of cases) {
      const stream = tokenizer.streamDecoder({ skipSpecial: true });
      const text = c.parsed.map((id) => stream.push(id)).join('') + stream.flush();
      // llama.cpp's detokenize strips one leading space from the first token's piece only (the
      // SentencePiece prefix space); a generation stream keeps it.
      const firstIsText = tokenizer.tokenType(c.parsed[0]!) === TokenType.Normal;
      assert.equal(tokenizer.kind === 'spm' && firstIsText ? text.replace(/^ /, '') : text, c.generatedText, JSON.stringify(c.text));
    }
  });
}
