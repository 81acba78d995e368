// Records llama.cpp's token ids for texts that spell control and user-defined tokens, with and
// without special parsing, into test/fixtures/tokenizer/special-tokens.json (read by
// special-tokens-llama-cpp.test.ts), and its generated-text rendering (detokenize without special).
// Needs node-llama-cpp (npm run bench:setup):
//
//     npx tsc -p tsconfig.json && node dist/test/tokenizer/record-special-tokens.js
import { writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { repoRoot } from '../paths.js';
import { LlamaCppReference } from './llama-cpp-reference.js';
import { SPECIAL_TOKEN_TEXTS, SPECIAL_TOKEN_VOCABS } from './special-token-vocabs.js';

const OUTPUT = join(repoRoot, 'test', 'fixtures', 'tokenizer', 'special-tokens.json');

const reference = await LlamaCppReference.open();
const results: Record<string, { text: string; plain: number[]; parsed: number[]; generatedText: string }[]> = {};
try {
  for (const [name, meta] of Object.entries(SPECIAL_TOKEN_VOCABS)) {
    const vocab = await reference.load(meta());
    results[name] = SPECIAL_TOKEN_TEXTS.map((text) => {
      const parsed = vocab.tokenize(text, true);
      return { text, plain: vocab.tokenize(text, false), parsed, generatedText: vocab.detokenize(parsed, false) };
    });
    await vocab.dispose();
  }
} finally {
  await reference.close();
}
const fixture = { source: 'llama.cpp through node-llama-cpp 3.22.1: tokenize(text, false / true), detokenize(parsed ids, false)', results };
writeFileSync(OUTPUT, JSON.stringify(fixture, null, 1) + '\n');
console.log(`→ ${OUTPUT}`);
