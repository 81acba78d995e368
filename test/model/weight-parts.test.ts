// A fused tensor (attn_qkv, Phi-3's gate+up ffn_up) loaded as one weight per stacked part: each part
// holds exactly its rows of the whole, on both backends, from a file on disk (native maps it) and
// from bytes in memory.
import assert from 'node:assert/strict';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { test } from 'node:test';
import { GGUFFile } from '../../src/model/gguf/reader.js';
import { GGMLType } from '../../src/model/gguf/types.js';
import { GGUFWriter } from '../../src/model/gguf/writer.js';
import { WeightLoader } from '../../src/model/weight-loader.js';
import { native, randomWeightBytes, reference, Rng } from '../native/helpers.js';

test('matrixParts splits a row-stacked tensor into weights holding exactly their rows', () => {
  const cols = 256, parts = [64, 32, 32];
  const rows = parts.reduce((a, b) => a + b, 0);
  const dir = mkdtempSync(join(tmpdir(), 'vserve-parts-'));
  try {
    for (const type of [GGMLType.F32, GGMLType.Q4_K, GGMLType.Q8_0]) {
      const bytes = randomWeightBytes(type, rows, cols, new Rng(type + 1));
      const w = new GGUFWriter();
      w.setString('general.architecture', 'llama');
      w.addTensor('blk.0.attn_qkv.weight', [cols, rows], type);
      const path = join(dir, `fused-${type}.gguf`);
      w.writeFile(path, () => [bytes]);
      for (const file of [GGUFFile.open(path), GGUFFile.fromBytes(w.toBytes(() => [bytes]))]) {
        for (const backend of [reference, native]) {
          const loader = new WeightLoader(file, backend, 'llama');
          const whole = backend.toFloat32(loader.matrix('blk.0.attn_qkv.weight', cols, rows));
          let start = 0;
          for (const [i, part] of loader.matrixParts('blk.0.attn_qkv.weight', cols, parts).entries()) {
            assert.equal(part.rows, parts[i]);
            assert.deepEqual(backend.toFloat32(part), whole.subarray(start * cols, (start + parts[i]!) * cols), `${backend.name} type ${type} part ${i}`);
            start += parts[i]!;
          }
          assert.throws(() => loader.matrixParts('blk.0.attn_qkv.weight', cols, [64, 32]), /has shape \[256, 128\], the llama hyperparameters need \[256, 96\]/);
        }
        file.close();
      }
    }
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
});
