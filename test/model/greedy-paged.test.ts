// The bundled model through a PagedKVManager's block tables gives exactly the greedy continuation it
// gives with a contiguous cache (ArrayKV), on both backends; the prompt is prefilled in chunks that
// cross block boundaries, and a second sequence grows alongside so the slot's blocks are scattered.
import assert from 'node:assert/strict';
import { test } from 'node:test';
import { ArrayKV } from '../../src/backend/array-kv.js';
import type { KVView } from '../../src/backend/backend.js';
import { PagedKVManager } from '../../src/kv/paged-kv.js';
import type { TransformerModel } from '../../src/model/transformer.js';
import { loadModel } from '../../src/model/load.js';
import { bundledModel, STORIES_GREEDY } from '../paths.js';

const CONTEXT = 256, STEPS = 60, CHUNK = 3;

function argmax(a: Float32Array): number {
  let best = 0;
  for (let i = 1; i < a.length; i++) if (a[i]! > a[best]!) best = i;
  return best;
}

/** Greedy tokens for `prompt` in slot 0; `grow(n)` makes slot 0 hold n tokens before each forward. */
function greedy(model: TransformerModel, prompt: number[], kv: KVView, grow: (tokens: number) => void): number[] {
  const ids = [...prompt];
  let logits: Float32Array | undefined;
  for (let start = 0; start < prompt.length; start += CHUNK) {
    const chunk = prompt.slice(start, start + CHUNK);
    grow(start + chunk.length);
    const last = start + chunk.length === prompt.length;
    logits = model.forward({ tokens: Int32Array.from(chunk), positions: Int32Array.from(chunk, (_, i) => start + i),
      slots: new Int32Array(chunk.length), logitRows: last ? Int32Array.of(chunk.length - 1) : new Int32Array(0) }, kv);
  }
  while (ids.length < prompt.length + STEPS) {
    ids.push(argmax(logits!));
    grow(ids.length);
    logits = model.forward({ tokens: Int32Array.of(ids.at(-1)!), positions: Int32Array.of(ids.length - 1), slots: Int32Array.of(0), logitRows: Int32Array.of(0) }, kv);
  }
  return ids.slice(prompt.length);
}

for (const backend of ['reference', 'native'] as const) {
  test(`${backend} backend: greedy text with a paged KV view (block 16) equals the contiguous one`, () => {
    const { model, tokenizer } = loadModel(bundledModel, { backend });
    try {
      const c = model.config;
      const prompt = tokenizer.encode('Once upon a time', { addSpecial: true });
      const contiguous = greedy(model, prompt, new ArrayKV(c.nLayers, 1, CONTEXT, c.nKVHeads, c.headDim), () => {});
      const paged = new PagedKVManager({ layers: c.nLayers, kvHeads: c.nKVHeads, headDim: c.headDim, maxSlots: 2, maxContext: CONTEXT,
        blockSize: 16, budgetBytes: 2 * CONTEXT * c.nKVHeads * c.headDim * 4 * c.nLayers * 2 });
      const [mine, other] = [paged.allocSlot()!, paged.allocSlot()!];
      assert.equal(mine, 0);
      const lens = new Int32Array(2);
      const got = greedy(model, prompt, paged.view(), (tokens) => {
        lens[mine] = tokens;
        lens[other] = Math.min(CONTEXT, tokens + 1); // a neighbour growing in step interleaves the blocks
        assert.ok(paged.step(lens).ok);
      });
      assert.deepEqual(got, contiguous);
      assert.ok(new Set(paged.blockTable(mine)).size > 1 && paged.blockTable(mine)[1] !== paged.blockTable(mine)[0]! + 1, 'blocks interleaved');
      assert.equal(tokenizer.decode(got).trimStart().slice(0, 60), STORIES_GREEDY.trimStart().slice(0, 60));
    } finally {
      model.backend.close();
      model.close();
    }
  });
}
