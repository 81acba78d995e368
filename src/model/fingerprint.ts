// A short, deterministic identity of a model file, part of every prefix-cache key: two processes that
// load the same GGUF agree on it, and files that differ in metadata, tensor layout or weights do not.
// Hashing every weight of a multi-GB file would cost seconds at load, so each tensor contributes its
// header and its first bytes; files that share all of those hold the same model in every case we meet.
import { createHash } from 'node:crypto';
import type { GGUFFile } from './gguf/reader.js';

const BYTES_PER_TENSOR = 4096;

export function modelFingerprint(file: GGUFFile): string {
  const h = createHash('sha256');
  h.update(`gguf v${file.version} ${file.fileSize}\n`);
  for (const [key, value] of file.metadata) {
    h.update(key);
    h.update(JSON.stringify(value, (_k, v: unknown) => (typeof v === 'bigint' ? v.toString() : v)) ?? '');
  }
  for (const t of file.tensors) {
    h.update(`${t.name}:${t.type}:${t.dims.join('x')}@${t.offset}`);
    h.update(file.tensorHead(t, BYTES_PER_TENSOR));
  }
  return h.digest('base64url').slice(0, 22);
}
