// What a tier stores for one cached block: a small header naming the block's key, the model-and-format
// fingerprint and the payload's length and CRC-32, then the payload (block-rows.ts: every layer's K and V
// rows). A value read back is used only if all of these match what the reader expects, so a value written
// by another model, another KV format or layout version, or damaged on the way, is never loaded.
import { crc32 } from 'node:zlib';
import { BLOCK_LAYOUT_VERSION } from '../block-hash.js';

const MAGIC = 0x564b5356; // 'VSKV' read as a little-endian u32
const PREFIX_BYTES = 8; // magic u32 + header length u32

interface BlockHeader {
  layout: string;
  key: string;
  fingerprint: string;
  bytes: number;
  crc32: number;
}

/** Why a stored value was not used. */
export type BlockRejection = 'malformed' | 'foreign' | 'checksum';

export function encodeBlock(key: string, fingerprint: string, payload: Uint8Array): Uint8Array {
  const header: BlockHeader = { layout: BLOCK_LAYOUT_VERSION, key, fingerprint, bytes: payload.length, crc32: crc32(payload) };
  const json = Buffer.from(JSON.stringify(header));
  const out = new Uint8Array(PREFIX_BYTES + json.length + payload.length);
  const dv = new DataView(out.buffer);
  dv.setUint32(0, MAGIC, true);
  dv.setUint32(4, json.length, true);
  out.set(json, PREFIX_BYTES);
  out.set(payload, PREFIX_BYTES + json.length);
  return out;
}

/**
 * The payload of a value stored under `key`, if it is exactly what a block of this model and format must
 * be (`bytes` long, matching checksum); else why not. The payload is a view into `value`.
 */
export function decodeBlock(value: Uint8Array, key: string, fingerprint: string, bytes: number): { payload: Uint8Array } | { rejected: BlockRejection } {
  if (value.length < PREFIX_BYTES) return { rejected: 'malformed' };
  const dv = new DataView(value.buffer, value.byteOffset, value.byteLength);
  const headerBytes = dv.getUint32(4, true);
  if (dv.getUint32(0, true) !== MAGIC || PREFIX_BYTES + headerBytes > value.length) return { rejected: 'malformed' };
  let header: Partial<BlockHeader>;
  try {
    header = JSON.parse(Buffer.from(value.buffer, value.byteOffset + PREFIX_BYTES, headerBytes).toString('utf8')) as Partial<BlockHeader>;
  } catch {
    return { rejected: 'malformed' };
  }
  if (header.layout !== BLOCK_LAYOUT_VERSION || header.fingerprint !== fingerprint || header.key !== key || header.bytes !== bytes) return { rejected: 'foreign' };
  const payload = value.subarray(PREFIX_BYTES + headerBytes);
  if (payload.length !== bytes) return { rejected: 'malformed' };
  if (crc32(payload) !== header.crc32) return { rejected: 'checksum' };
  return { payload };
}
