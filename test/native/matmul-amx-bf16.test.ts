// The AMX-BF16 prefill matmuls of the avx512-amx-bf16 kernel set (native/isa/amx_bf16_kernels.cc): from
// bf16MatmulFrom() activation rows on, packed weights are dequantized to bf16 tiles and the activations
// rounded to bf16, so results are held to bf16MatmulError's bound against the exact product (f64, from
// the reference's dequantization), which a wrong scale, offset, row or tile misses by far. Row counts
// cover one pair of row tiles, a pair plus a lone tile, a last tile of 1 and of 13 rows; weight rows, a
// lone group, pairs, and tail rows past the last group (dequantized rows); one thread and the default. With
// 663 rows on one thread each call runs six group pairs and a lone group, each converted to bf16 during
// the tiles of the one before.
// Below the threshold (decode, small batches) the set is the avx512-amx set: the same numbers.
//
// Where the CPU (or the OS) offers no AMX-BF16 the set does not exist and these tests skip, saying so.
import assert from 'node:assert/strict';
import { test } from 'node:test';
import { GGMLType, typeName } from '../../src/model/gguf/types.js';
import { addon, bf16MatmulError, isas, native, randomWeightBytes, reference, Rng, wideRangeActivations } from './helpers.js';

const BF16 = 'avx512-amx-bf16';
const skip = isas.includes(BF16) ? false : `no AMX-BF16 on this CPU/OS (usable kernel sets: ${isas.join(', ')})`;

// Every packed type the set takes, with row lengths of a few blocks / super-blocks.
const TYPES: readonly (readonly [GGMLType, number])[] = [
  [GGMLType.Q8_0, 96],
  [GGMLType.Q4_0, 160],
  [GGMLType.IQ4_NL, 96],
  [GGMLType.Q3_K, 256],
  [GGMLType.Q4_K, 512],
  [GGMLType.Q5_K, 256],
  [GGMLType.Q6_K, 512],
  [GGMLType.IQ4_XS, 256],
];

function onIsa<T>(isa: string, fn: () => T): T {
  const before = addon.isa();
  try {
    addon.selectIsa(isa);
    return fn();
  } finally {
    addon.selectIsa(before);
  }
}

test('avx512-amx-bf16 is offered exactly where AMX-BF16 is, after avx512-amx, with a bf16 threshold', { skip: isas.includes('avx512-amx') ? false : 'no AMX' }, () => {
  if (!isas.includes(BF16)) {
    assert.throws(() => addon.selectIsa(BF16), /not available/);
    return;
  }
  assert.deepEqual(isas.slice(-2), ['avx512-amx', BF16], 'the best set on an AMX-BF16 CPU');
  onIsa(BF16, () => assert.ok(addon.bf16MatmulFrom() > 16, 'decode and small batches stay on int8'));
  onIsa('avx512-amx', () => assert.equal(addon.bf16MatmulFrom(), 0));
});

for (const [type, cols] of TYPES) {
  test(`avx512-amx-bf16 ${typeName(type)} prefill matmuls keep the bf16 bound against the exact product`, { skip }, () => {
    const rng = new Rng(7300 + type);
    const from = onIsa(BF16, () => addon.bf16MatmulFrom());
    try {
      for (const [threads, rows] of [[0, 16], [0, 85], [1, 69], [1, 663]] as const) {
        addon.setThreads(threads);
        const bytes = randomWeightBytes(type, rows, cols, rng);
        const w = native.createWeight('w', type, rows, cols, bytes);
        const wf = reference.toFloat32(reference.createWeight('w', type, rows, cols, bytes));
        for (const n of [from, from + 13, from + 33, from + 17]) {
          const x = n === from + 13 ? wideRangeActivations(rng, n, cols) : rng.floats(n * cols);
          const got = new Float32Array(n * rows);
          onIsa(BF16, () => native.matmul(got, x, n, w));
          const err = bf16MatmulError(got, x, wf, n, rows, cols);
          assert.ok(err <= 1, `${typeName(type)} n=${n} rows=${rows} threads=${threads}: ${err} of the bound`);
        }
      }
    } finally {
      addon.setThreads(0);
    }
  });
}

test('avx512-amx-bf16 below its threshold gives the avx512-amx numbers', { skip }, () => {
  const rng = new Rng(7400);
  const from = onIsa(BF16, () => addon.bf16MatmulFrom());
  for (const [type, cols] of TYPES) {
    const rows = 48;
    const w = native.createWeight('w', type, rows, cols, randomWeightBytes(type, rows, cols, rng));
    for (const n of [1, 16, from - 1]) {
      const x = rng.floats(n * cols);
      const [int8, bf16] = ['avx512-amx', BF16].map((isa) => onIsa(isa, () => {
        const out = new Float32Array(n * rows);
        native.matmul(out, x, n, w);
        return out;
      }));
      assert.deepEqual(bf16, int8, `${typeName(type)} n=${n}`);
    }
  }
});

test('avx512-amx-bf16 matmulMany over mixed packed types equals one matmul per weight', { skip }, () => {
  const rng = new Rng(7500);
  const cols = 256, n = onIsa(BF16, () => addon.bf16MatmulFrom()) + 5;
  const shapes = [[GGMLType.Q4_K, 64], [GGMLType.Q6_K, 37], [GGMLType.Q8_0, 32]] as const;
  const ws = shapes.map(([type, rows]) => native.createWeight('w', type, rows, cols, randomWeightBytes(type, rows, cols, rng)));
  const x = rng.floats(n * cols);
  onIsa(BF16, () => {
    const outs = shapes.map(([, rows]) => new Float32Array(n * rows));
    native.matmulMany(outs, x, n, ws);
    ws.forEach((w, i) => {
      const one = new Float32Array(n * shapes[i]![1]);
      native.matmul(one, x, n, w);
      assert.deepEqual(outs[i], one, `weight ${i} (${typeName(shapes[i]![0])})`);
    });
  });
});
