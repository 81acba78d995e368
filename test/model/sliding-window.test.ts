// Sliding-window models outside the llama.cpp fixtures: a llama file that declares a window (llama.cpp
// ignores the key, so there is no llama.cpp result to record) attends through it on both backends and
// only differs from the same weights without it once a sequence outgrows the window; how Gemma 2/3
// metadata turns into per-layer windows, RoPE bases and soft-caps (llama.cpp's defaults included); what
// is refused: unsupported variants by name, and KV eviction on a windowed model.
import assert from 'node:assert/strict';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, test } from 'node:test';
import { ARCH_SPECS, type ArchSpec, SMALL_SHAPE, writeArchModel } from '../../bench/arch-models.js';
import { vserveRun } from '../../bench/arch-parity.js';
import { createEngineCore } from '../../src/engine/engine-setup.js';
import type { GemmaConfig } from '../../src/model/architectures/gemma.js';
import { readModelConfig } from '../../src/model/architectures/index.js';
import { GGUFFile } from '../../src/model/gguf/reader.js';
import { GGMLType } from '../../src/model/gguf/types.js';
import { type GGUFWriter, inferTyped } from '../../src/model/gguf/writer.js';
import { loadModel } from '../../src/model/load.js';

const dir = mkdtempSync(join(tmpdir(), 'vserve-window-'));
after(() => rmSync(dir, { recursive: true, force: true }));

const spec = (name: string) => ARCH_SPECS.find((s) => s.name === name)!;
let files = 0;

/** A spec's f32 file with extra metadata written after the spec's own. */
function file(base: ArchSpec, extra?: (w: GGUFWriter) => void, layers?: number): string {
  const s: ArchSpec = {
    ...base,
    ...(layers ? { shape: { ...(base.shape ?? SMALL_SHAPE), layers } } : {}),
    metadata: (w, shape) => { base.metadata?.(w, shape); extra?.(w); },
  };
  return writeArchModel(join(dir, `${base.name}-${files++}.gguf`), s, GGMLType.F32);
}

function config(path: string): GemmaConfig {
  const f = GGUFFile.open(path);
  try {
    return readModelConfig(f) as GemmaConfig;
  } finally {
    f.close();
  }
}

const PROMPT = [403, 407, 261, 378, 432, 383, 286, 261, 376, 298, 315, 421, 395, 317, 426, 338];
const maxDiff = (a: Float32Array, b: Float32Array) => a.reduce((m, x, i) => Math.max(m, Math.abs(x - b[i]!)), 0);

test('a llama file with llama.attention.sliding_window attends through it, natively as in the reference, and differs only past the window', () => {
  const windowed = file(spec('llama'), (w) => w.setUint32('llama.attention.sliding_window', 8));
  const plain = file(spec('llama'));
  assert.equal(config(windowed).slidingWindow, 8);
  assert.equal(config(plain).slidingWindow, undefined);
  const native = vserveRun(windowed, PROMPT, 'native', 12);
  assert.deepEqual(vserveRun(windowed, PROMPT, 'reference', 12).greedy, native.greedy);
  assert.ok(maxDiff(native.firstLogits, vserveRun(plain, PROMPT, 'native', 1).firstLogits) > 0.5, 'the window changes a 16-token prompt\'s logits');
  // Eight tokens fit the window: the same logits as without one.
  assert.ok(maxDiff(vserveRun(windowed, PROMPT.slice(0, 8), 'native', 1).firstLogits, vserveRun(plain, PROMPT.slice(0, 8), 'native', 1).firstLogits) < 1e-6);
});

test('Gemma 3: five local layers to one global, local RoPE base 10000 unscaled, global base and linear scaling from the file', () => {
  const c = config(file(spec('gemma3'), undefined, 12));
  assert.deepEqual(c.windowed, [true, true, true, true, true, false, true, true, true, true, true, false]);
  assert.equal(c.slidingWindow, 8);
  assert.deepEqual([c.localRopeBase, c.localRopeScale, c.ropeFreqBase, c.ropeFreqScale], [10000, 1, 1e6, 1 / 8]);
  assert.equal(c.attnSoftcap, undefined);
  assert.equal(c.finalSoftcap, undefined);
  assert.equal(c.attentionScale, 1 / 8);
  // A per-layer pattern and a local base from the file; no window key: every layer global.
  const pattern = [false, true, true, false, true, false];
  const custom = config(file(spec('gemma3'), (w) => {
    w.set('gemma3.attention.sliding_window_pattern', inferTyped(pattern));
    w.setFloat32('gemma3.rope.freq_base_swa', 2000);
    w.setFloat32('gemma3.final_logit_softcapping', 20);
  }));
  assert.deepEqual(custom.windowed, pattern);
  assert.equal(custom.localRopeBase, 2000);
  assert.equal(custom.finalSoftcap, 20);
  const global = config(file({ ...spec('gemma3'), metadata: undefined }, undefined));
  assert.ok(global.windowed.every((x) => !x));
  assert.equal(global.slidingWindow, undefined);
});

test('Gemma 2: every other layer local; llama.cpp\'s defaults where keys are missing (window 4096, caps 50 and 30)', () => {
  const c = config(file({ ...spec('gemma2'), metadata: undefined }, undefined, 4));
  assert.deepEqual(c.windowed, [true, false, true, false]);
  assert.deepEqual([c.slidingWindow, c.attnSoftcap, c.finalSoftcap, c.localRopeBase], [4096, 50, 30, 10000]);
  const recorded = config(file(spec('gemma2')));
  assert.deepEqual([recorded.slidingWindow, recorded.attnSoftcap, recorded.finalSoftcap, recorded.localRopeBase], [8, 3, 15, 500]);
  // The 27B model (46 layers) scales by 1/sqrt(dim / heads), as llama.cpp does.
  assert.equal(config(file(spec('gemma2'), undefined, 46)).attentionScale, 1 / Math.sqrt(SMALL_SHAPE.dim / SMALL_SHAPE.heads));
});

test('unsupported Gemma variants are ModelConfigErrors naming the key', () => {
  const cases: [ArchSpec, (w: GGUFWriter) => void, RegExp][] = [
    [spec('gemma3'), (w) => w.setString('gemma3.rope.scaling.type', 'yarn'), /gemma3\.rope\.scaling\.type "yarn" is not supported/],
    [spec('gemma3'), (w) => w.setUint32('gemma3.attention.key_length_swa', 32), /gemma3\.attention\.key_length_swa/],
    [spec('gemma2'), (w) => w.setUint32('gemma2.attention.sliding_window', 0), /gemma2\.attention\.sliding_window is 0/],
    [spec('gemma2'), (w) => w.setFloat32('gemma2.attn_logit_softcapping', 0), /gemma2\.attn_logit_softcapping = 0 must be positive/],
    [spec('gemma'), (w) => w.setUint32('gemma.attention.value_length', 32), /gemma\.attention\.value_length 32 differs/],
    [spec('gemma3'), (w) => w.setFloat32('gemma3.attention.sliding_window_pattern', 2.5), /sliding_window_pattern/],
  ];
  for (const [s, extra, message] of cases) {
    assert.throws(() => config(file(s, extra)), (e: Error) => e.name === 'ModelConfigError' && message.test(e.message), String(message));
  }
});

test('a windowed model cannot evict: an engine default policy is a config error, a request\'s is its error', () => {
  const path = file(spec('gemma2'));
  const { model, tokenizer } = loadModel(path, { backend: 'reference' });
  try {
    assert.throws(() => createEngineCore(model, tokenizer, { maxSeqs: 2, maxContext: 128, kvPolicy: 'sinks' }), /sliding window of 8 positions/);
    const c = createEngineCore(model, tokenizer, { maxSeqs: 2, maxContext: 128 });
    const [e] = c.submit(0, PROMPT, { kvPolicy: 'snapkv', maxTokens: 2 });
    assert.equal(e?.error?.param, 'kv_policy');
    assert.match(e?.error?.message ?? '', /sliding window of 8 positions/);
    c.close();
  } finally {
    model.close();
  }
});
