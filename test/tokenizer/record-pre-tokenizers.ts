// Records llama.cpp's token ids for every BPE pre-tokenizer vserve knows, into
// test/fixtures/tokenizer/pre-tokenizers.json (read by pre-tokenizers.test.ts). Each name is run on
// the gpt-2 vocabulary with tokenizer.ggml.pre set to it, over PRE_TOKENIZER_TEXTS; names that give
// the same ids for every text are stored together. llama.cpp aborts (an assertion in its merge lookup)
// when a "whitespace" word holds a space next to other whitespace, so those texts are recorded as
// null for that name. Needs node-llama-cpp (npm run bench:setup):
//
//     npx tsc -p tsconfig.json && node dist/test/tokenizer/record-pre-tokenizers.js
import { writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { SUPPORTED_PRE_TOKENIZERS } from '../../src/model/tokenizer/index.js';
import { repoRoot } from '../paths.js';
import { LlamaCppReference } from './llama-cpp-reference.js';
import { PRE_TOKENIZER_TEXTS } from './pre-tokenizer-texts.js';
import { vocabMetadata } from './vocab-fixtures.js';

const OUTPUT = join(repoRoot, 'test', 'fixtures', 'tokenizer', 'pre-tokenizers.json');

const reference = await LlamaCppReference.open();
const groups = new Map<string, { names: string[]; ids: (number[] | null)[] }>();
const abortsLlamaCpp = (name: string, text: string) => name === 'whitespace' && /\s{2}/u.test(text.replace(/\S+/gu, '|'));
try {
  for (const name of SUPPORTED_PRE_TOKENIZERS) {
    const vocab = await reference.load(vocabMetadata('gpt-2').set('tokenizer.ggml.pre', name));
    const ids = PRE_TOKENIZER_TEXTS.map((text) => (abortsLlamaCpp(name, text) ? null : vocab.tokenize(text, false)));
    await vocab.dispose();
    const key = JSON.stringify(ids);
    const group = groups.get(key) ?? { names: [], ids };
    group.names.push(name);
    groups.set(key, group);
  }
} finally {
  await reference.close();
}

const fixture = {
  source: 'llama.cpp through node-llama-cpp 3.22.1, tokenize(text, false) on ggml-vocab-gpt-2.gguf with tokenizer.ggml.pre replaced',
  vocab: 'gpt-2',
  texts: PRE_TOKENIZER_TEXTS,
  groups: [...groups.values()].map((g) => ({ names: g.names, ids: g.ids.map((ids) => ids?.join(' ') ?? null) })),
};
writeFileSync(OUTPUT, JSON.stringify(fixture, null, 1) + '\n');
console.log(`${SUPPORTED_PRE_TOKENIZERS.length} pre-tokenizers in ${groups.size} groups → ${OUTPUT}`);
