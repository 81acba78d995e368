// The bundled model's greedy continuation is known exactly (the project's shared README): the whole stack —
// GGUF reader, tokenizer, forward pass, sampler, detokenizer — must reproduce it token for token.
import assert from 'node:assert/strict';
import { test } from 'node:test';
import { generate } from '../../src/engine/generate.js';
import { loadModel } from '../../src/model/load.js';
import { ArrayKV } from '../../src/backend/array-kv.js';
import { bundledModel, STORIES_GREEDY } from '../paths.js';

function greedy(backend: 'reference' | 'native', maxTokens: number) {
  const { model, tokenizer } = loadModel(bundledModel, { backend });
  try {
    const it = generate(model, tokenizer, 'Once upon a time', { temperature: 0, maxTokens });
    let text = '';
    const tokens: number[] = [];
    let r = it.next();
    while (!r.done) {
      text += r.value.text;
      tokens.push(...r.value.tokens);
      r = it.next();
    }
    return { text, tokens, summary: r.value };
  } finally {
    model.backend.close();
    model.close();
  }
}

for (const backend of ['reference', 'native'] as const) {
  test(`${backend} backend: BOS + "Once upon a time" continues with exactly the known greedy text`, () => {
    // About as many tokens as the known text has: the output must begin with all of that text.
    const { tokenizer } = loadModel(bundledModel, { backend: 'reference' });
    const n = tokenizer.encode(STORIES_GREEDY).length;
    const { text, summary } = greedy(backend, n);
    assert.equal(text.slice(0, STORIES_GREEDY.length), STORIES_GREEDY);
    assert.ok(text.length - STORIES_GREEDY.length < 8, `unexpected tail ${JSON.stringify(text.slice(STORIES_GREEDY.length))}`);
    assert.equal(summary.promptTokens, 5);
    assert.equal(summary.completionTokens, n);
    assert.equal(summary.finishReason, 'length');
  });
}

test('a batch of prompts at different positions gives each the same logits as running alone', () => {
  const { model, tokenizer } = loadModel(bundledModel, { backend: 'reference' });
  const c = model.config;
  const prompts = ['Once upon a time', 'The cat sat', 'Lily and Tom went to the park'].map((p) => tokenizer.encode(p, { addSpecial: true }));
  const alone = prompts.map((ids) => {
    const kv = new ArrayKV(c.nLayers, 1, 64, c.nKVHeads, c.headDim);
    return model.forward({ tokens: Int32Array.from(ids), positions: Int32Array.from(ids, (_, i) => i), slots: new Int32Array(ids.length), logitRows: Int32Array.of(ids.length - 1) }, kv);
  });
  // One packed batch: all three prompts, each in its own slot.
  const kv = new ArrayKV(c.nLayers, 3, 64, c.nKVHeads, c.headDim);
  const tokens: number[] = [], positions: number[] = [], slots: number[] = [], rows: number[] = [];
  prompts.forEach((ids, s) => {
    ids.forEach((id, i) => { tokens.push(id); positions.push(i); slots.push(s); });
    rows.push(tokens.length - 1);
  });
  const packed = model.forward({ tokens: Int32Array.from(tokens), positions: Int32Array.from(positions), slots: Int32Array.from(slots), logitRows: Int32Array.from(rows) }, kv);
  prompts.forEach((_, s) => {
    const got = packed.subarray(s * c.vocabSize, (s + 1) * c.vocabSize);
    for (let i = 0; i < c.vocabSize; i++) assert.ok(Math.abs(got[i]! - alone[s]![i]!) < 1e-4, `prompt ${s} logit ${i}`);
  });
  model.close();
});

test('logits asked for some rows, in any order and repeated, are those rows\' logits when every row is asked for (the last layer\'s MLP runs on them alone)', () => {
  const { model, tokenizer } = loadModel(bundledModel, { backend: 'reference' });
  try {
    const c = model.config;
    const ids = tokenizer.encode('Lily and Tom went to the park', { addSpecial: true });
    const run = (logitRows: number[]) => {
      const kv = new ArrayKV(c.nLayers, 1, 64, c.nKVHeads, c.headDim);
      return model.forward({ tokens: Int32Array.from(ids), positions: Int32Array.from(ids, (_, i) => i), slots: new Int32Array(ids.length), logitRows: Int32Array.from(logitRows) }, kv);
    };
    const all = run(ids.map((_, i) => i));
    const picked = [ids.length - 1, 2, 2, 0];
    const some = run(picked);
    // The reference backend's arithmetic for a row does not depend on the other rows: equal to the bit.
    picked.forEach((row, j) => assert.deepEqual(some.subarray(j * c.vocabSize, (j + 1) * c.vocabSize), all.subarray(row * c.vocabSize, (row + 1) * c.vocabSize), `row ${row}`));
  } finally {
    model.close();
  }
});
