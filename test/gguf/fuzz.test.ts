// Malformed GGUF input must fail with a GGUFError that names the problem: never a crash, a hang, a
// different exception type, or a huge allocation.
import assert from 'node:assert/strict';
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { test } from 'node:test';
import { GGUFError } from '../../src/model/gguf/errors.js';
import { GGUFFile } from '../../src/model/gguf/reader.js';
import { TransformerModel } from '../../src/model/transformer.js';
import { ModelConfigError } from '../../src/model/model-config.js';
import { ReferenceBackend } from '../../src/backend/reference/reference-backend.js';
import { NativeBackend } from '../../src/backend/native/native-backend.js';
import type { Backend } from '../../src/backend/backend.js';
import { generate } from '../../src/engine/generate.js';
import { createTokenizer } from '../../src/model/tokenizer/index.js';
import { typeName } from '../../src/model/gguf/types.js';
import { Rng } from '../../src/engine/rng.js';
import { bundledModel, vocabFile } from '../paths.js';

const model = new Uint8Array(readFileSync(bundledModel));

function parse(bytes: Uint8Array): GGUFFile | GGUFError {
  try {
    return GGUFFile.fromBytes(bytes, 'fuzzed.gguf');
  } catch (e) {
    if (e instanceof GGUFError) return e;
    throw new Error(`non-GGUFError escaped the reader: ${(e as Error)?.stack ?? String(e)}`);
  }
}

function expectError(bytes: Uint8Array, pattern: RegExp): void {
  const r = parse(bytes);
  assert.ok(r instanceof GGUFError, `expected a GGUFError matching ${pattern}, the file parsed`);
  assert.match(r.message, pattern);
}

function withU32(at: number, value: number): Uint8Array {
  const b = model.slice();
  new DataView(b.buffer).setUint32(at, value, true);
  return b;
}
function withU64(at: number, value: bigint): Uint8Array {
  const b = model.slice();
  new DataView(b.buffer).setBigUint64(at, value, true);
  return b;
}
/** Offset just past the first occurrence of `text` (a key or tensor name) in the file. */
function after(text: string): number {
  const at = Buffer.from(model).indexOf(Buffer.from(text, 'utf8'));
  assert.ok(at > 0, `"${text}" not found`);
  return at + Buffer.byteLength(text);
}

test('header faults give specific errors', () => {
  expectError(withU32(0, 0x12345678), /bad magic/);
  expectError(withU32(4, 1), /version 1 is not supported/);
  expectError(withU32(4, 4), /unsupported GGUF version 4/);
  expectError(withU64(8, 1n << 40n), /tensor count .* larger than the file/);
  expectError(withU64(16, 1n << 40n), /metadata count .* larger than the file/);
  expectError(withU64(8, 1n << 62n), /far beyond any real file/);
  expectError(model.subarray(0, 3), /truncated/);
  expectError(new Uint8Array(0), /truncated/);
});

test('metadata faults give specific errors', () => {
  expectError(withU64(24, 1n << 50n), /string length .* past the end/); // first key's length
  const archType = after('general.architecture');
  expectError(withU32(archType, 99), /unknown value type 99/);
  const tokens = after('tokenizer.ggml.tokens');
  // The tokens array: type u32 (ARRAY), element type u32, count u64.
  expectError(withU64(tokens + 8, 1n << 40n), /array of \d+ elements points past the end/);
  expectError(withU32(tokens + 4, 77), /unknown array element type 77/);
  const bad = model.slice();
  bad[33] = 0xff; // inside the first key's text: invalid UTF-8
  expectError(bad, /not valid UTF-8/);
});

test('tensor-info faults give specific errors', () => {
  const t = after('blk.0.attn_q.weight'); // n_dims u32, dims u64 x2, type u32, offset u64
  expectError(withU32(t, 0), /has 0 dimensions/);
  expectError(withU32(t, 7), /has 7 dimensions/);
  expectError(withU64(t + 4, 0n), /zero-sized dimension/);
  expectError(withU64(t + 4, 1n << 40n), /past the end of the file|overflows/);
  expectError(withU32(t + 20, 1000), /unknown type 1000/);
  expectError(withU32(t + 20, 12), /row length 64 is not a multiple of the Q4_K block size 256/);
  expectError(withU64(t + 24, 3n), /not aligned/);
  expectError(withU64(t + 24, 1n << 36n), /extends past the end of the file/);
  const dup = model.slice();
  const second = Buffer.from(dup).indexOf(Buffer.from('blk.0.attn_k.weight'));
  Buffer.from(dup.buffer).write('blk.0.attn_q.weight', second, 'latin1');
  expectError(dup, /duplicate tensor name/);
});

test('a file cut short anywhere gives a truncation error', () => {
  const f = GGUFFile.fromBytes(model);
  // Every cut inside the header and metadata, then a sample of cuts through the tensor data.
  const cuts: number[] = [];
  for (let i = 0; i < f.dataOffset; i += 7) cuts.push(i);
  for (let i = 0; i < 64; i++) cuts.push(f.dataOffset + Math.floor(((i + 0.5) / 64) * (model.length - f.dataOffset)));
  for (const cut of cuts) {
    const r = parse(model.subarray(0, cut));
    assert.ok(r instanceof GGUFError, `cut at ${cut} parsed`);
    assert.match(r.message, /truncated|past the end/, `cut at ${cut}: ${r.message}`);
  }
});

test('random byte mutations never escape as anything but GGUFError', () => {
  const rng = new Rng(1234);
  const sources = [model, new Uint8Array(readFileSync(vocabFile('gpt-2'))).subarray(0, 400_000)];
  for (const src of sources) {
    const headerEnd = Math.min(src.length, 200_000);
    for (let iter = 0; iter < 300; iter++) {
      const b = src.slice();
      const flips = 1 + (rng.nextUint32() % 4);
      for (let k = 0; k < flips; k++) {
        // Bias towards the first bytes, where counts and lengths live.
        const at = rng.next() < 0.5 ? rng.nextUint32() % 512 : rng.nextUint32() % headerEnd;
        b[at] = rng.nextUint32() & 0xff;
      }
      parse(b);
    }
  }
});

test('tensors that do not match the architecture are rejected by the model loader', () => {
  const b = model.slice();
  const at = after('llama.embedding_length') + 4; // skip the value type
  new DataView(b.buffer).setUint32(at, 96, true);
  const f = GGUFFile.fromBytes(b, 'edited.gguf');
  assert.throws(() => TransformerModel.load(f, new ReferenceBackend()), (e: unknown) => e instanceof ModelConfigError && /token_embd.weight" has shape \[64, 512\].*need \[96, 512\]/.test((e as Error).message));
  const arch = model.slice();
  Buffer.from(arch.buffer).write('llamb', after('general.architecture') + 12, 'latin1');
  assert.throws(() => TransformerModel.load(GGUFFile.fromBytes(arch), new ReferenceBackend()), /unsupported architecture "llamb"/);
});

/** Loads the file on a backend and generates a few greedy tokens: the text, or the error it met. */
function loadAndRun(path: string, backend: Backend): string | Error {
  let file: GGUFFile | undefined;
  try {
    file = GGUFFile.open(path);
    const model = TransformerModel.load(file, backend);
    let text = '';
    try {
      for (const d of generate(model, createTokenizer(file), 'Once', { maxTokens: 3, temperature: 0 })) text += d.text;
    } finally {
      model.close();
    }
    return text;
  } catch (e) {
    file?.close();
    return e as Error;
  }
}

test('a tensor mutated to any GGML type: a specific error at load naming the tensor and type, or a clean run', () => {
  const dir = mkdtempSync(join(tmpdir(), 'vserve-typefuzz-'));
  const backends: Backend[] = [new ReferenceBackend(), new NativeBackend()];
  const path = join(dir, 'mutated.gguf');
  const outcomes = { loadError: 0, run: 0, modelFault: 0, parseError: 0 };
  try {
    for (const name of ['blk.0.attn_q.weight', 'blk.1.ffn_norm.weight', 'token_embd.weight', 'blk.4.ffn_down.weight']) {
      const info = GGUFFile.fromBytes(model).tensor(name)!;
      // Tensor info: name, n_dims u32, dims u64 each, then the type u32.
      const typeAt = after(name) + 4 + 8 * info.dims.length;
      for (const type of [...Array(41).keys(), 1000]) {
        const b = withU32(typeAt, type);
        const parsed = parse(b);
        if (parsed instanceof GGUFError) {
          assert.match(parsed.message, new RegExp(`tensor "${name.replaceAll('.', '\\.')}"`), parsed.message);
          outcomes.parseError++;
          continue;
        }
        writeFileSync(path, b);
        for (const backend of backends) {
          const r = loadAndRun(path, backend);
          const where = `${name} as type ${type} on ${backend.name}`;
          if (typeof r === 'string') outcomes.run++;
          else if (r.name === 'ModelFaultError') outcomes.modelFault++; // garbage weights that reach NaN: named as such
          else {
            assert.equal(r.name, 'ModelConfigError', `${where}: ${r.stack}`);
            assert.ok(r.message.includes(`tensor "${name}" has type ${typeName(type)} (ggml type ${type})`), `${where}: ${r.message}`);
            outcomes.loadError++;
          }
        }
      }
    }
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
  // Types 3 (Q4_1) and 9 (Q8_1) among them: the native backend runs neither, the reference one not Q8_1.
  assert.ok(outcomes.loadError > 0 && outcomes.run > 0 && outcomes.parseError > 0, JSON.stringify(outcomes));
});
