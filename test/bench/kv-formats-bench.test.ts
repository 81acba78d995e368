// The KV-format parts of `npm run bench -- kv` in miniature: decode attention per format, capacity per
// format and end-to-end decode (vserve, and llama.cpp when node-llama-cpp is installed) run on tiny sizes
// and give a figure for every variant; the decode window counts what it should. Speeds are never asserted.
import assert from 'node:assert/strict';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { test } from 'node:test';
import { decodeWindow } from '../../bench/decode-window.js';
import { TINYLLAMA_ATTENTION } from '../../bench/kv-attention.js';
import { benchFormatCapacity, formatCapacityMarkdown, sampleMix } from '../../bench/kv-capacity.js';
import { benchDecodeE2E, e2eMarkdown, type E2EOptions } from '../../bench/kv-e2e.js';
import { DEFAULT_FORMAT_VARIANTS, parseKVTypes } from '../../bench/kv-format-variants.js';
import { benchFormatAttention, formatAttentionMarkdown } from '../../bench/kv-formats-attention.js';
import { writeBenchModel } from '../../bench/models.js';
import { NativeBackend } from '../../src/backend/native/native-backend.js';

test('--formats names one type for K and V or a K/V pair, each once, and refuses unknown formats', () => {
  assert.deepEqual(parseKVTypes(['q8_0', 'q8_0/q4_0', 'q8_0/q8_0']), [
    { label: 'q8_0', type: { k: 'q8_0', v: 'q8_0' } },
    { label: 'q8_0/q4_0', type: { k: 'q8_0', v: 'q4_0' } },
  ]);
  assert.throws(() => parseKVTypes(['q5_1']), /q5_1/);
  assert.throws(() => parseKVTypes(['f16/f16/f16']), /K\/V pair/);
});

test('the decode window counts the steps in which every sequence decodes', () => {
  // Three sequences: the third gets its first token at step 2; all decode in lockstep, steps 10 ms apart.
  const lockstep = [[0, 10, 20, 30, 40], [0, 10, 20, 30, 40], [20, 30, 40, 50, 60]].map((t) => t.map((x) => x + 100));
  const w = decodeWindow(lockstep, 90);
  assert.equal(w.tokens, 6); // steps at 30 and 40, three tokens each
  assert.equal(w.seconds, 0.02);
  assert.equal(w.tokS, 300);
  assert.equal(w.stepMs, 10);
  assert.equal(w.meanBurst, 3);
  assert.equal(w.prefillS, 0.03);
  // The same tokens, but the second sequence always a third of a step late: bursts of fewer tokens.
  const ragged = lockstep.map((t, i) => (i === 1 ? t.map((x) => x + 3.4) : t));
  assert.ok(decodeWindow(ragged, 90).meanBurst < 3);
  assert.throws(() => decodeWindow([[0, 1], [5, 6]], 0), /no step/);
});

test('decode attention runs for every format variant, with speedups against f32 and f16', () => {
  const backend = new NativeBackend({ threads: 1 });
  try {
    const variants = parseKVTypes(DEFAULT_FORMAT_VARIANTS);
    const points = benchFormatAttention(backend, TINYLLAMA_ATTENTION, { batches: [1, 2], contexts: [64], variants, rounds: 1 });
    assert.equal(points.length, 2);
    for (const p of points) {
      assert.deepEqual(p.formats.map((f) => f.label), variants.map((v) => v.label));
      for (const f of p.formats) {
        assert.ok(f.ms > 0 && f.gbPerS > 0, `${f.label}: ${f.ms} ms`);
        if (f.label !== 'f32') assert.ok(f.vsF32!.ratio > 0);
        if (f.label !== 'f16') assert.ok(f.vsF16!.ratio > 0);
      }
    }
    assert.ok(formatAttentionMarkdown(points, '## attention', 1).some((l) => l.includes('q8_0 vs f16')));
  } finally {
    backend.close();
  }
});

test('capacity per format: smaller rows admit more sequences, each type against f32', () => {
  const shape = { layers: 2, kvHeads: 2, headDim: 64, maxContext: 256 };
  const pool = Array.from({ length: 50 }, (_, i) => 40 + i * 4);
  const mixes = [[sampleMix('tiny mix', pool, 400, 1), sampleMix('tiny mix', pool, 400, 2)]];
  const types = parseKVTypes(['f32', 'f16', 'q8_0', 'q4_0']).map((t) => t.type);
  const points = benchFormatCapacity(shape, 4 << 20, mixes, { types, blockSize: 16, pageSizes: [16 << 10, 0] });
  assert.equal(points.length, types.length * 3); // paged, virtual 16 KiB, virtual default
  for (const setting of new Set(points.map((p) => p.setting))) {
    const of = points.filter((p) => p.setting === setting);
    assert.deepEqual(of.map((p) => p.kvType), ['f32', 'f16', 'q8_0', 'q4_0']);
    assert.equal(of[0]!.vsF32, 1);
    for (let i = 1; i < of.length; i++) assert.ok(of[i]!.meanSequences >= of[i - 1]!.meanSequences, `${setting}: ${of.map((p) => p.meanSequences)}`);
  }
  assert.ok(formatCapacityMarkdown(points).some((l) => l.includes('q4_0')));
});

test('end-to-end decode runs on vserve (and llama.cpp when installed) for a K/V pair of formats', { timeout: 120_000 }, async () => {
  const dir = mkdtempSync(join(tmpdir(), 'vserve-kvbench-'));
  try {
    const modelPath = join(dir, 'tiny.gguf');
    writeBenchModel(modelPath, { dim: 256, ffn: 512, layers: 2, heads: 4, kvHeads: 2, vocab: 32000, context: 128, ropeBase: 10000 }, 'q8_0', 'tiny', false);
    const opts: E2EOptions = {
      modelPath, variants: parseKVTypes(['f16', 'q8_0/q4_0']), sequences: 2, promptTokens: [20, 30], decodeTokens: 16, threads: 1, reps: 1,
      peer: true, peerBatchSize: 512, peerFlashAttention: true, peerDispatchWaitMs: 5, quietWaitMs: 0, seed: 3,
    };
    const r = await benchDecodeE2E(opts);
    assert.equal(r.promptLengths.length, 2);
    const engines = r.peer.ran ? ['vserve', 'llama.cpp'] : ['vserve'];
    assert.equal(r.runs.length, opts.variants.length * engines.length);
    for (const run of r.runs) {
      assert.equal(run.error, undefined, `${run.engine} ${run.kvType}: ${run.error}`);
      assert.ok(run.window!.tokS > 0 && run.window!.tokens > 0, `${run.engine} ${run.kvType}`);
    }
    assert.ok(e2eMarkdown(r, opts).some((l) => l.includes('q8_0/q4_0')));
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
});
