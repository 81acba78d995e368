// The GGUF writer's output must read back through the GGUF reader unchanged: every metadata value type
// (arrays and nested arrays included), tensor infos, alignment and tensor bytes.
import assert from 'node:assert/strict';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { test } from 'node:test';
import { GGUFError } from '../../src/model/gguf/errors.js';
import { GGUFFile } from '../../src/model/gguf/reader.js';
import { GGMLType, GGUFValueType } from '../../src/model/gguf/types.js';
import { GGUFWriter, inferTyped, type TensorPlan } from '../../src/model/gguf/writer.js';
import { vocabFile } from '../paths.js';

// dist/test/gguf/ -> repository root
const spmVocab = vocabFile('llama-spm');

/** Deterministic bytes for a tensor, so each tensor's data differs. */
function patternFor(t: TensorPlan): Uint8Array {
  const b = new Uint8Array(t.nBytes);
  for (let i = 0; i < b.length; i++) b[i] = (i * 31 + t.name.length * 7) & 0xff;
  return b;
}

function sampleWriter(alignment?: number): GGUFWriter {
  const w = new GGUFWriter(alignment);
  w.set('u8', { type: GGUFValueType.UINT8, value: 255 });
  w.set('i8', { type: GGUFValueType.INT8, value: -128 });
  w.set('u16', { type: GGUFValueType.UINT16, value: 65535 });
  w.set('i16', { type: GGUFValueType.INT16, value: -32768 });
  w.setUint32('u32', 4294967295);
  w.set('i32', { type: GGUFValueType.INT32, value: -2147483648 });
  w.setFloat32('f32', 0.5);
  w.set('f64', { type: GGUFValueType.FLOAT64, value: Math.PI });
  w.setBool('bool', true);
  w.setString('string', 'héllo ✓');
  w.set('u64', { type: GGUFValueType.UINT64, value: 2n ** 63n + 5n });
  w.set('i64', { type: GGUFValueType.INT64, value: -(2n ** 62n) });
  w.set('u64 small', { type: GGUFValueType.UINT64, value: 12345 });
  w.set('arr f32', { type: GGUFValueType.ARRAY, elemType: GGUFValueType.FLOAT32, value: new Float32Array([1, -2.5, 3]) });
  w.set('arr i32', { type: GGUFValueType.ARRAY, elemType: GGUFValueType.INT32, value: [1, -2, 3] });
  w.set('arr u8', { type: GGUFValueType.ARRAY, elemType: GGUFValueType.UINT8, value: [0, 7, 255] });
  w.set('arr string', { type: GGUFValueType.ARRAY, elemType: GGUFValueType.STRING, value: ['a', '', 'ünï'] });
  w.set('arr bool', { type: GGUFValueType.ARRAY, elemType: GGUFValueType.BOOL, value: [true, false] });
  w.set('arr i64', { type: GGUFValueType.ARRAY, elemType: GGUFValueType.INT64, value: [1n, -1n] });
  w.set('arr nested', {
    type: GGUFValueType.ARRAY,
    elemType: GGUFValueType.ARRAY,
    value: [
      { type: GGUFValueType.ARRAY, elemType: GGUFValueType.UINT16, value: [1, 2] },
      { type: GGUFValueType.ARRAY, elemType: GGUFValueType.STRING, value: ['x'] },
    ],
  });
  w.addTensor('norm', [64], GGMLType.F32);
  w.addTensor('q8', [64, 3], GGMLType.Q8_0);
  w.addTensor('q4', [32, 5], GGMLType.Q4_0); // 90 bytes: the next tensor needs padding
  w.addTensor('k', [256, 2], GGMLType.Q4_K);
  w.addTensor('h', [3, 2, 2, 2], GGMLType.F16);
  return w;
}

function checkSample(f: GGUFFile, alignment: number): void {
  assert.equal(f.version, 3);
  assert.equal(f.alignment, alignment);
  const m = f.metadata;
  assert.equal(m.get('u8'), 255);
  assert.equal(m.get('i8'), -128);
  assert.equal(m.get('u16'), 65535);
  assert.equal(m.get('i16'), -32768);
  assert.equal(m.get('u32'), 4294967295);
  assert.equal(m.get('i32'), -2147483648);
  assert.equal(m.get('f32'), 0.5);
  assert.equal(m.get('f64'), Math.PI);
  assert.equal(m.get('bool'), true);
  assert.equal(m.get('string'), 'héllo ✓');
  assert.equal(m.get('u64'), 2n ** 63n + 5n);
  assert.equal(m.get('i64'), -(2n ** 62n));
  assert.equal(m.get('u64 small'), 12345);
  assert.deepEqual(m.get('arr f32'), new Float32Array([1, -2.5, 3]));
  assert.deepEqual(m.get('arr i32'), new Int32Array([1, -2, 3]));
  assert.deepEqual(m.get('arr u8'), new Uint8Array([0, 7, 255]));
  assert.deepEqual(m.get('arr string'), ['a', '', 'ünï']);
  assert.deepEqual(m.get('arr bool'), [true, false]);
  assert.deepEqual(m.get('arr i64'), new BigInt64Array([1n, -1n]));
  assert.deepEqual(m.get('arr nested'), [new Uint16Array([1, 2]), ['x']]);

  assert.deepEqual(f.tensors.map((t) => [t.name, t.dims, t.type, t.nBytes]), [
    ['norm', [64], GGMLType.F32, 256],
    ['q8', [64, 3], GGMLType.Q8_0, 6 * 34],
    ['q4', [32, 5], GGMLType.Q4_0, 5 * 18],
    ['k', [256, 2], GGMLType.Q4_K, 2 * 144],
    ['h', [3, 2, 2, 2], GGMLType.F16, 48],
  ]);
  for (const t of f.tensors) {
    assert.equal(t.fileOffset % alignment, 0, `${t.name} is aligned`);
    assert.deepEqual(f.tensorBytes(t), patternFor({ ...t, dims: t.dims }));
  }
}

test('every metadata type, tensor infos and data round-trip through the reader (in memory)', () => {
  const w = sampleWriter();
  const bytes = w.toBytes((t) => [patternFor(t)]);
  assert.equal(bytes.length, w.fileSize());
  checkSample(GGUFFile.fromBytes(bytes), 32);
});

test('a custom alignment is written as general.alignment and honoured', () => {
  const w = sampleWriter(128);
  const f = GGUFFile.fromBytes(w.toBytes((t) => [patternFor(t)]));
  assert.equal(f.get('general.alignment'), 128);
  checkSample(f, 128);
});

test('writeFile streams tensor data given in chunks of any size', () => {
  const dir = mkdtempSync(join(tmpdir(), 'vserve-gguf-'));
  try {
    const path = join(dir, 'sample.gguf');
    const w = sampleWriter();
    w.writeFile(path, function* (t) {
      const b = patternFor(t);
      for (let i = 0; i < b.length; i += 7) yield b.subarray(i, i + 7);
    });
    const f = GGUFFile.open(path);
    try {
      assert.equal(f.fileSize, w.fileSize());
      checkSample(f, 32);
    } finally {
      f.close();
    }
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
});

test('the llama-spm vocabulary metadata survives a copy through inferTyped', () => {
  const src = GGUFFile.open(spmVocab);
  try {
    const w = new GGUFWriter();
    for (const [key, value] of src.metadata) w.set(key, inferTyped(value));
    const copy = GGUFFile.fromBytes(w.toBytes(() => []));
    assert.deepEqual([...copy.metadata.keys()], [...src.metadata.keys()]);
    for (const [key, value] of src.metadata) assert.deepEqual(copy.metadata.get(key), value, key);
    assert.equal((copy.get<string[]>('tokenizer.ggml.tokens') ?? []).length, 32000);
  } finally {
    src.close();
  }
});

test('inferTyped picks the GGUF types the reader would have read', () => {
  assert.equal(inferTyped(7).type, GGUFValueType.UINT32);
  assert.equal(inferTyped(-7).type, GGUFValueType.INT32);
  assert.equal(inferTyped(2 ** 40).type, GGUFValueType.UINT64);
  assert.equal(inferTyped(0.25).type, GGUFValueType.FLOAT32);
  assert.equal(inferTyped(-1n).type, GGUFValueType.INT64);
  assert.deepEqual(inferTyped(new Int32Array([1])), { type: GGUFValueType.ARRAY, elemType: GGUFValueType.INT32, value: new Int32Array([1]) });
});

test('invalid tensors and data are rejected with a GGUFError', () => {
  const w = new GGUFWriter();
  assert.throws(() => w.addTensor('bad', [33], GGMLType.Q8_0), GGUFError);
  assert.throws(() => w.addTensor('zero', [0], GGMLType.F32), GGUFError);
  assert.throws(() => w.set('x', { type: GGUFValueType.UINT8, value: 256 }).header(), GGUFError);
  assert.throws(() => new GGUFWriter(48), GGUFError);
  const v = new GGUFWriter();
  v.addTensor('t', [32], GGMLType.F32);
  assert.throws(() => v.toBytes(() => [new Uint8Array(10)]), /gave 10 bytes, expected 128/);
  assert.throws(() => v.addTensor('t', [32], GGMLType.F32), /duplicate/);
});
