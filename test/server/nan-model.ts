// A copy of the bundled model with one tensor's weights overwritten by NaN: a broken model file, as a
// bad conversion or a corrupted download produces.
import { mkdtempSync, readFileSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { GGMLType } from '../../src/model/gguf/types.js';
import { GGUFFile } from '../../src/model/gguf/reader.js';
import { bundledModel } from '../paths.js';

/** Writes the file into a fresh temporary folder and returns its path. */
export function writeNanModel(tensor = 'output_norm.weight'): string {
  const bytes = new Uint8Array(readFileSync(bundledModel));
  const info = GGUFFile.fromBytes(bytes).tensors.find((t) => t.name === tensor);
  if (!info || info.type !== GGMLType.F32) throw new Error(`${tensor} is not an f32 tensor of the bundled model`);
  new Float32Array(bytes.buffer, info.fileOffset, info.nElements).fill(NaN);
  const path = join(mkdtempSync(join(tmpdir(), 'vserve-nan-')), 'nan.gguf');
  writeFileSync(path, bytes);
  return path;
}
