// Where tests find the repository's files and fixtures (the tests need nothing outside the repository).
import { existsSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';

function findRepoRoot(): string {
  let dir = dirname(fileURLToPath(import.meta.url));
  while (!existsSync(join(dir, 'package.json'))) {
    const up = dirname(dir);
    if (up === dir) throw new Error('cannot find the repository root (package.json) above the tests');
    dir = up;
  }
  return dir;
}

export const repoRoot = findRepoRoot();
export const bundledModel = join(repoRoot, 'models', 'stories260K.gguf');
/** llama.cpp's vocab-only GGUFs and tokenizer vectors (test/fixtures/vocab/README.md). */
export const vocabFile = (name: string) => join(repoRoot, 'test', 'fixtures', 'vocab', `ggml-vocab-${name}.gguf`);

/** The bundled model's known greedy continuation of BOS + "Once upon a time" (from the project's shared README). */
export const STORIES_GREEDY =
  ', there was a little girl named Lily. She loved to play outside in the park. One day, she saw a big, red ball. ' +
  'She wanted to play with it, but it was too high.\nLily\'s mom said, "Lily, let\'s go to the park." Lily was sad and didn\'t know what to do.';
