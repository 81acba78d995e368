// Opens a generated f32 GGUF of an architecture spec (bench/arch-models.ts) for the length of `fn`, then
// removes it: for tests that read a file's config or load its weights.
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { type ArchSpec, writeArchModel } from '../../bench/arch-models.js';
import { GGUFFile } from '../../src/model/gguf/reader.js';
import { GGMLType } from '../../src/model/gguf/types.js';

export function withArchFile<T>(spec: ArchSpec, fn: (file: GGUFFile) => T): T {
  const dir = mkdtempSync(join(tmpdir(), 'vserve-arch-'));
  const file = GGUFFile.open(writeArchModel(join(dir, 'model.gguf'), spec, GGMLType.F32));
  try {
    return fn(file);
  } finally {
    file.close();
    rmSync(dir, { recursive: true, force: true });
  }
}
