// The reference dequantization of Q2_K, Q3_K, Q5_K and IQ4_XS on hand-built super-blocks, each checked
// value worked out by hand from ggml's block layout and formula (see the comments), all other values of
// a block being whatever the zeroed bytes give.
import assert from 'node:assert/strict';
import { test } from 'node:test';
import { halfBits } from '../../bench/random-weights.js';
import { dequantize, IQ4_NL_VALUES } from '../../src/model/gguf/dequant.js';
import { GGMLType } from '../../src/model/gguf/types.js';

function block(bytes: number, fill: (b: Uint8Array, view: DataView) => void): Uint8Array {
  const b = new Uint8Array(bytes);
  fill(b, new DataView(b.buffer));
  return b;
}

test('Q2_K: x = d * (scale & 15) * q - dmin * (scale >> 4), value 128h + 32s + l in bits 2s of qs[32h + l]', () => {
  const b = block(84, (b, v) => {
    b[0] = 0x21; // group 0: scale 1, min 2
    b[1] = 0x03; // group 1 (values 16-31): scale 3, min 0
    b[2] = 0x12; // group 2 (values 32-47): scale 2, min 1
    b[8] = 0xf5; // group 8 (values 128-143): scale 5, min 15
    b[16 + 0] = 0b11100100; // value 0: q 0; value 32: q 1; value 64: q 2; value 96: q 3
    b[16 + 16] = 0x03; // value 16: q 3
    b[16 + 32] = 0x02; // value 128: q 2
    v.setUint16(80, halfBits(0.5), true);
    v.setUint16(82, halfBits(0.25), true);
  });
  const x = dequantize(GGMLType.Q2_K, b, 256);
  assert.equal(x[0], 0.5 * 1 * 0 - 0.25 * 2);
  assert.equal(x[16], 0.5 * 3 * 3);
  assert.equal(x[32], 0.5 * 2 * 1 - 0.25 * 1);
  assert.equal(x[64], 0); // group 4: scale 0, min 0
  assert.equal(x[128], 0.5 * 5 * 2 - 0.25 * 15);
  assert.equal(x[129], -0.25 * 15);
});

test('Q3_K: x = d * (scale - 32) * (low2 - (hmask bit ? 0 : 4)), 6-bit scales split over 12 bytes', () => {
  const b = block(110, (b, v) => {
    b[96] = 0x01; // group 0 low nibble 1
    b[104] = 0x02; // group 0 top bits 2: scale 33 -> +1
    b[101] = 0xf0; // group 13 low nibble (high nibble of byte 5) 15; group 5 low nibble 0
    b[105] = 0xc0; // group 13 top bits (byte 8 + 13 % 4, bits 2 * (13 / 4)) 3: scale 63 -> +31; group 5 top bits 0
    b[32] = 0b10; // value 0: low bits 2
    b[0] = 0x01; // value 0: hmask bit 0 set -> q = 2
    b[64 + 20] = 0x30; // value 128 + 64 + 20 (h 1, s 2, l 20: group 13): low bits 3
    b[20] = 0x40; // its hmask bit (4h + s = 6) set -> q = 3
    v.setUint16(108, halfBits(0.5), true);
  });
  const x = dequantize(GGMLType.Q3_K, b, 256);
  assert.equal(x[0], 0.5 * 1 * 2);
  assert.equal(x[1], 0.5 * 1 * -4); // low bits 0, hmask bit clear
  assert.equal(x[212], 0.5 * 31 * 3);
  assert.equal(x[67], 0.5 * -32 * -4); // group 5 (h 0, s 2, l 3): scale 0 -> -32, q -4
});

test('Q5_K: Q4_K with the fifth bit of value 64p + l (+32) at bit 2p (2p + 1) of qh[l]', () => {
  const b = block(176, (b, v) => {
    v.setUint16(0, halfBits(0.5), true);
    v.setUint16(2, halfBits(0.25), true);
    b[4] = 2; // sub-block 0 scale 2
    b[8] = 1; // sub-block 0 min 1
    b[5] = 3; // sub-block 1 scale 3, min 0
    b[48] = 0x53; // value 0: low nibble 3; value 32: high nibble 5
    b[16] = 0b01; // value 0: fifth bit set (bit 0); value 32: clear (bit 1)
    b[16 + 7] = 0b10; // value 32 + 7: fifth bit set
  });
  const x = dequantize(GGMLType.Q5_K, b, 256);
  assert.equal(x[0], 0.5 * 2 * 19 - 0.25 * 1);
  assert.equal(x[32], 0.5 * 3 * 5);
  assert.equal(x[39], 0.5 * 3 * 16);
  assert.equal(x[1], -0.25);
});

test('IQ4_XS: x = d * (ls - 32) * table[nibble], ls from scales_l nibbles and scales_h bit pairs', () => {
  const b = block(136, (b, v) => {
    v.setUint16(0, halfBits(0.25), true);
    v.setUint16(2, 0b10, true); // sub-block 0: top bits 2
    b[4] = 0x03; // sub-block 0: low nibble 3 -> ls 35, factor 0.75; sub-block 1: 0 -> ls 0
    b[8] = 0xf0; // value 0: nibble 0 (-127); value 16: nibble 15 (113)
    b[8 + 48] = 0x08; // sub-block 3, value 96: nibble 8 (1); value 112: nibble 0
  });
  const x = dequantize(GGMLType.IQ4_XS, b, 256);
  assert.deepEqual(IQ4_NL_VALUES, [-127, -104, -83, -65, -49, -35, -22, -10, 1, 13, 25, 38, 53, 69, 89, 113]);
  assert.equal(x[0], 0.75 * -127);
  assert.equal(x[16], 0.75 * 113);
  assert.equal(x[96], -8 * 1);
  assert.equal(x[112], -8 * -127);
  assert.equal(x[33], -8 * -127); // sub-block 1: ls 0, nibble 0
});
