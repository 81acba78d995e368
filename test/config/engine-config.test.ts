// The engine's configuration schema: defaults filled in, every range and choice refused with a message
// that names the option, what it takes and the value given; unknown keys get the nearest name; the
// defaults are the ones a loaded engine actually runs with.
import assert from 'node:assert/strict';
import { test } from 'node:test';
import { ENGINE_DEFAULTS, ENGINE_OPTION_NAMES, engineOptionInfo, parseEngineConfig, type EngineOptions } from '../../src/config/engine-config.js';
import { EngineConfigError } from '../../src/config/engine-config-error.js';
import { resolveEngineOptions } from '../../src/engine/engine-setup.js';
import { Engine } from '../../src/index.js';
import { bundledModel } from '../paths.js';
import { virtualUnavailable } from '../engine/engine-helpers.js';

function refusal(options: unknown): string {
  try {
    parseEngineConfig(options as EngineOptions);
  } catch (e) {
    assert.ok(e instanceof EngineConfigError, `${JSON.stringify(options)}: ${(e as Error).name}`);
    return e.message;
  }
  assert.fail(`${JSON.stringify(options)} was accepted`);
}

test('no options: every default filled in, and the options the engine derives from the model left open', () => {
  const c = parseEngineConfig({});
  assert.deepEqual(
    [c.kvManager, c.scheduler, c.maxSeqs, c.maxBatchTokens, c.watermark, c.prefixCache, c.admissionOrder, c.maxAdmissionDelayMs, c.backend],
    ['virtual', 'sarathi', 16, 512, 0.01, true, 'prefix', 2000, 'native'],
  );
  assert.deepEqual(c.kvType, { k: 'f16', v: 'f16' });
  assert.deepEqual([c.blendSeparator, c.blendRecompute, c.blendLayer, c.blendStages, c.blendContext], [' # # ', 0.15, 1, 1, 'prefix']);
  assert.deepEqual([c.kvDiskBytes, c.kvStoreTimeoutMs], [4 * 1024 ** 3, 500]);
  for (const open of ['kvMemory', 'pageSize', 'blockSize', 'maxContext', 'kvResidual', 'kvRotate', 'kvPolicy', 'kvBudget', 'threads', 'kvStore', 'kvDisk'] as const) {
    assert.equal(c[open], undefined, open);
  }
  assert.deepEqual(ENGINE_DEFAULTS, c);
});

test('given values are kept as they are', () => {
  const c = parseEngineConfig({ kvManager: 'paged', maxSeqs: 4096, watermark: 0, kvType: 'kivi2', blendRecompute: 1, blendContext: 'bos', prefixCache: false, threads: 3 });
  assert.deepEqual([c.kvManager, c.maxSeqs, c.watermark, c.blendRecompute, c.blendContext, c.prefixCache, c.threads], ['paged', 4096, 0, 1, 'bos', false, 3]);
  assert.deepEqual(c.kvType, { k: 'kivi2c', v: 'kivi2t' });
  assert.deepEqual(parseEngineConfig({ kvType: { v: 'q8_0' } }).kvType, { k: 'f16', v: 'q8_0' });
});

test('a value out of range names the option, what it takes and the value given', () => {
  const cases: [unknown, string][] = [
    [{ maxSeqs: 0 }, 'maxSeqs must be an integer between 1 and 4096, got 0'],
    [{ maxSeqs: 4097 }, 'maxSeqs must be an integer between 1 and 4096, got 4097'],
    [{ maxSeqs: 2.5 }, 'maxSeqs must be an integer between 1 and 4096, got 2.5'],
    [{ maxSeqs: '8' }, 'maxSeqs must be an integer between 1 and 4096, got "8"'],
    [{ maxBatchTokens: -3 }, 'maxBatchTokens must be an integer of at least 1, got -3'],
    [{ maxContext: 1 }, 'maxContext must be an integer of at least 2, got 1'],
    [{ maxAdmissionDelayMs: -1 }, 'maxAdmissionDelayMs must be an integer of at least 0, got -1'],
    [{ kvResidual: 1 << 17 }, 'kvResidual must be an integer between 0 and 65536, got 131072'],
    [{ kvStoreTimeoutMs: 0 }, 'kvStoreTimeoutMs must be an integer of at least 1, got 0'],
    [{ threads: 0 }, 'threads must be an integer between 1 and 1024, got 0'],
    [{ watermark: 1 }, 'watermark must be a fraction in [0, 1), got 1'],
    [{ watermark: -0.1 }, 'watermark must be a fraction in [0, 1), got -0.1'],
    [{ blendRecompute: 1.5 }, 'blendRecompute must be a number from 0 to 1, got 1.5'],
    [{ scheduler: 'fifo' }, 'scheduler must be one of sarathi, vllm, static, got "fifo"'],
    [{ kvManager: 'pagd' }, 'kvManager must be one of virtual, paged, static, got "pagd"'],
    [{ backend: 'gpu' }, 'backend must be one of native, reference, got "gpu"'],
    [{ blendContext: 'none' }, 'blendContext must be one of prefix, bos, got "none"'],
    [{ prefixCache: 'no' }, 'prefixCache must be true or false, got "no"'],
    [{ blendSeparator: '' }, 'blendSeparator must be a non-empty string, got ""'],
    [{ kvStore: 42 }, 'kvStore must be a string, got 42'],
    [{ kvType: 'f13' }, 'kvType must be one of f32, f16, q8_0, q4_0, kivi2c, kivi4c, kivi2t, kivi4t, kivi2, kivi4, got "f13"'],
    [{ kvType: { k: 'q3' } }, 'kvType.k must be one of f32, f16, q8_0, q4_0, kivi2c, kivi4c, kivi2t, kivi4t, got "q3"'],
  ];
  for (const [options, message] of cases) assert.equal(refusal(options), message);
});

test('an unknown key names the nearest option; the known list is the schema\'s', () => {
  assert.match(refusal({ kvManagr: 'paged' }), /^unknown Engine\.load option "kvManagr" \(did you mean "kvManager"\?\); known: kvManager, /);
  assert.match(refusal({ max_seqs: 2 }), /did you mean "maxSeqs"/);
  assert.match(refusal({ zzzzzzzzzz: 1 }), /^unknown Engine\.load option "zzzzzzzzzz"; known: /);
  assert.equal(refusal(null), 'Engine.load options must be an object');
  // Every option of the schema is accepted as a key (none lost between the schema and the key check).
  for (const name of ENGINE_OPTION_NAMES) assert.doesNotThrow(() => parseEngineConfig({ [name]: undefined }), name);
});

test('every option has a description; flags are distinct and spelled as CLI flags', () => {
  const flags = new Set<string>();
  for (const name of ENGINE_OPTION_NAMES) {
    const info = engineOptionInfo(name);
    assert.ok(info.description.length > 10, name);
    if (info.flag === undefined) continue;
    assert.match(info.flag, /^--[a-z][a-z0-9-]*$/, name);
    assert.ok(!flags.has(info.flag), `${info.flag} twice`);
    flags.add(info.flag);
  }
});

test('maxContext: the model\'s context, capped by default, never past it when given', () => {
  assert.equal(resolveEngineOptions({}, 512).maxContext, 512);
  assert.equal(resolveEngineOptions({}, 32768).maxContext, 2048);
  assert.equal(resolveEngineOptions({ maxContext: 4096 }, 32768).maxContext, 4096);
  assert.throws(() => resolveEngineOptions({ maxContext: 513 }, 512), (e: Error) => e instanceof EngineConfigError && e.message === 'maxContext must be an integer between 2 and 512, got 513');
});

test('Engine.load runs with the schema\'s defaults and refuses what the schema refuses', async () => {
  // The default (virtual) manager needs the native addon; the other defaults are checked either way.
  const kvManager = virtualUnavailable() ? 'paged' : undefined;
  const engine = await Engine.load(bundledModel, { backend: 'reference', ...(kvManager ? { kvManager } : {}) });
  try {
    const info = engine.info;
    assert.deepEqual(
      [info.kvManager, info.scheduler, info.maxSeqs, info.maxBatchTokens, info.prefixCache, info.kvType],
      [kvManager ?? ENGINE_DEFAULTS.kvManager, ENGINE_DEFAULTS.scheduler, ENGINE_DEFAULTS.maxSeqs, ENGINE_DEFAULTS.maxBatchTokens, ENGINE_DEFAULTS.prefixCache, ENGINE_DEFAULTS.kvType],
    );
  } finally {
    await engine.close();
  }
  await assert.rejects(Engine.load(bundledModel, { backend: 'reference', blendStages: 0 }), (e: Error) => e instanceof EngineConfigError && e.message === 'blendStages must be an integer of at least 1, got 0');
});
