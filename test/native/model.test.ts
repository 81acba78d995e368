// The bundled model on the native backend: its greedy continuation of BOS + "Once upon a time" is
// token-identical to the reference backend's and starts with the known text.
import assert from 'node:assert/strict';
import { test } from 'node:test';
import { generate } from '../../src/engine/generate.js';
import { loadModel, type BackendKind } from '../../src/model/load.js';
import { bundledModel, STORIES_GREEDY } from '../paths.js';

function greedyTokens(backend: BackendKind, maxTokens: number): { tokens: number[]; text: string } {
  const { model, tokenizer } = loadModel(bundledModel, { backend });
  try {
    const tokens: number[] = [];
    let text = '';
    for (const piece of generate(model, tokenizer, 'Once upon a time', { temperature: 0, maxTokens })) {
      tokens.push(...piece.tokens);
      text += piece.text;
    }
    return { tokens, text };
  } finally {
    model.backend.close();
    model.close();
  }
}

test('bundled model: native greedy output is token-identical to the reference backend', () => {
  const nat = greedyTokens('native', 90);
  const ref = greedyTokens('reference', 90);
  assert.deepEqual(nat.tokens, ref.tokens);
  assert.ok(nat.text.startsWith(', there was a little girl named Lily. She loved to play outside in the park.'), nat.text);
  assert.ok(STORIES_GREEDY.startsWith(nat.text), nat.text);
});
