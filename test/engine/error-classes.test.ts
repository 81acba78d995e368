// Errors thrown on the engine's worker reach the caller as the classes they were thrown as, with the
// same name, message, code, kind and field: checked for every listed class through a structured clone
// (what the worker's message port does), and for each error a real Engine can raise, on load and on
// generate, from copies of the bundled model broken in one place. The server's status for an error is the
// same before and after the crossing.
import assert from 'node:assert/strict';
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { dirname, join } from 'node:path';
import { after, test } from 'node:test';
import {
  ChatTemplateError, ContextLengthError, Engine, EngineClosedError, EngineConfigError, GGUFError, InternalEngineError, KVError, ModelConfigError, ModelFaultError,
  NativeAddonError, RequestFaultError, RequestParamsError, SamplingError, TokenizerError, type EngineDelta, type EngineOptions,
} from '../../src/index.js';
import { describeError } from '../../src/engine/error-kind.js';
import { REBUILT_ERROR_NAMES, rebuildError } from '../../src/engine/error-classes.js';
import { GGUFFile } from '../../src/model/gguf/reader.js';
import { GGUFWriter, inferTyped } from '../../src/model/gguf/writer.js';
import { fromEngineError } from '../../src/server/errors.js';
import { writeNanModel } from '../server/nan-model.js';
import { bundledModel } from '../paths.js';

const dir = mkdtempSync(join(tmpdir(), 'vserve-error-classes-'));
after(() => rmSync(dir, { recursive: true, force: true }));

/** One instance of each listed class, as the library throws them. */
const SAMPLES: Record<string, () => Error> = {
  GGUFError: () => new GGUFError('bad magic 0x12345678', '/models/x.gguf'),
  ModelConfigError: () => new ModelConfigError('x.gguf: unsupported architecture "nope"'),
  TokenizerError: () => new TokenizerError('unsupported tokenizer model "nope"'),
  ChatTemplateError: () => new ChatTemplateError('the chat template does not parse'),
  NativeAddonError: () => new NativeAddonError('the native addon was built for another Node'),
  KVError: () => new KVError('ERR_KV_CONTEXT_OVERFLOW', 'grow: 300 tokens are past maxContext 256'),
  EngineConfigError: () => new EngineConfigError('maxSeqs must be an integer between 1 and 4096, got 0'),
  RequestParamsError: () => new RequestParamsError('unknown generate parameter "colour"'),
  RequestFaultError: () => new RequestFaultError('logit_bias names token 9999', 'invalid_value', 'logit_bias'),
  ContextLengthError: () => new ContextLengthError('the prompt has 300 tokens; the context holds 256', 'messages'),
  SamplingError: () => new SamplingError('top_p', 'top_p must be in (0, 1], got 2'),
  InternalEngineError: () => new InternalEngineError('kv_failure', 'the KV cache failed'),
  ModelFaultError: () => new ModelFaultError('non_finite_logits', 'the model produced a non-finite logit'),
  EngineClosedError: () => new EngineClosedError('the engine is closed'),
};

/** An error as the worker's message port delivers it: a structured clone of its description. */
const crossed = (e: Error) => rebuildError(structuredClone(describeError(e)));

function assertSameError(actual: Error, expected: Error): void {
  assert.equal(actual.constructor, expected.constructor, `${actual.name} arrived as ${actual.constructor.name}`);
  assert.ok(actual instanceof expected.constructor);
  const fields = (e: Error) => {
    const { kind, code, param } = e as { kind?: unknown; code?: unknown; param?: unknown };
    return { name: e.name, message: e.message, kind, code, param };
  };
  assert.deepEqual(fields(actual), fields(expected));
}

test('every listed class crosses as itself, with its name, message, code, kind, field and the stack where it was thrown', () => {
  assert.deepEqual(Object.keys(SAMPLES).sort(), [...REBUILT_ERROR_NAMES].sort());
  for (const make of Object.values(SAMPLES)) {
    const original = make();
    // The clone alone keeps neither the class nor the fields: that is what rebuilding fixes.
    assert.ok(!(structuredClone(original) instanceof original.constructor));
    const rebuilt = crossed(original);
    assertSameError(rebuilt, original);
    assert.equal(rebuilt.stack, original.stack);
  }
  assert.ok(crossed(SAMPLES.ContextLengthError!()) instanceof RequestFaultError);
  assert.ok(crossed(SAMPLES.ModelFaultError!()) instanceof InternalEngineError);
});

test('the server gives a crossed error the status, code and field it gives the original', () => {
  for (const make of Object.values(SAMPLES)) {
    const original = make();
    const names = { prompt: 'messages' };
    assert.deepEqual(fromEngineError(crossed(original), names, 'req-1'), fromEngineError(original, names, 'req-1'), original.name);
  }
});

test('an unlisted name stays a plain Error with its name, code and field; without a kind it is a 500 that hides its message', () => {
  const stray = Object.assign(new RangeError('offset out of bounds'), { code: 'ERR_OUT_OF_RANGE' });
  const rebuilt = crossed(stray);
  assert.equal(rebuilt.constructor, Error);
  assert.deepEqual([rebuilt.name, rebuilt.message, (rebuilt as { code?: string }).code, (rebuilt as { kind?: string }).kind], ['RangeError', 'offset out of bounds', 'ERR_OUT_OF_RANGE', undefined]);
  const api = fromEngineError(rebuilt, {}, 'req-2');
  assert.equal(api.status, 500);
  assert.doesNotMatch(api.message, /offset/);
  // A kind the worker gave is kept: a request fault of a class this thread does not know is still the request's.
  const fault = crossed(Object.assign(new Error('bad field'), { name: 'PluginFaultError', kind: 'request', code: 'invalid_value', param: 'seed' }));
  assert.deepEqual([fault.constructor, fault.name, (fault as { kind?: string }).kind], [Error, 'PluginFaultError', 'request']);
  assert.equal(fromEngineError(fault, {}, 'req-3').status, 400);
  // A name shared with Object.prototype is not a listed class.
  assert.equal(rebuildError({ name: 'constructor', message: 'x' }).constructor, Error);
});

/** A copy of the bundled model with some metadata replaced. */
function modelWith(name: string, metadata: Record<string, string>): string {
  const src = GGUFFile.open(bundledModel);
  try {
    const w = new GGUFWriter();
    for (const [key, value] of src.metadata) w.set(key, inferTyped(value));
    for (const [key, value] of Object.entries(metadata)) w.setString(key, value);
    for (const t of src.tensors) w.addTensor(t.name, t.dims.map(Number), t.type);
    const path = join(dir, `${name}.gguf`);
    w.writeFile(path, (t) => [src.tensorBytes(src.tensors.find((x) => x.name === t.name)!)]);
    return path;
  } finally {
    src.close();
  }
}

const options: EngineOptions = { backend: 'reference', kvManager: 'paged', maxContext: 128, maxSeqs: 2 };

async function loadFailure(path: string, opts: EngineOptions = options): Promise<Error> {
  const e = await Engine.load(path, opts).then(
    async (engine) => {
      await engine.close();
      return undefined;
    },
    (err: unknown) => err,
  );
  assert.ok(e instanceof Error, `Engine.load(${path}) did not fail`);
  return e;
}

test('Engine.load: a malformed GGUF is a GGUFError naming the file, with the stack from where the reader threw it', async () => {
  const bytes = new Uint8Array(readFileSync(bundledModel));
  new DataView(bytes.buffer).setUint32(0, 0x12345678, true);
  const path = join(dir, 'bad-magic.gguf');
  writeFileSync(path, bytes);
  const e = await loadFailure(path);
  assert.ok(e instanceof GGUFError, `${e.name}: ${e.message}`);
  assert.equal(e.name, 'GGUFError');
  assert.ok(e.message.startsWith(`${path}: `), e.message);
  assert.match(e.message, /magic/);
  assert.match(e.stack ?? '', /gguf[/\\]reader\.js/);
});

test('Engine.load: broken metadata is a ModelConfigError, a TokenizerError or a ChatTemplateError', async () => {
  const arch = await loadFailure(modelWith('arch', { 'general.architecture': 'nonexistent' }));
  assert.ok(arch instanceof ModelConfigError, `${arch.name}: ${arch.message}`);
  assert.match(arch.message, /unsupported architecture "nonexistent"/);
  const tokenizer = await loadFailure(modelWith('tokenizer', { 'tokenizer.ggml.model': 'nonexistent' }));
  assert.ok(tokenizer instanceof TokenizerError, `${tokenizer.name}: ${tokenizer.message}`);
  assert.match(tokenizer.message, /nonexistent/);
  const template = await loadFailure(modelWith('template', { 'tokenizer.chat_template': '{% if messages %}{{ messages[0].content }' }));
  assert.ok(template instanceof ChatTemplateError, `${template.name}: ${template.message}`);
});

test('Engine.load: bad option values are EngineConfigErrors, a KV manager refusing its arguments a KVError with its code', async () => {
  for (const bad of [{ maxSeqs: 0 }, { watermark: 2 }, { kvType: 'f13' as never }]) {
    const e = await loadFailure(bundledModel, { ...options, ...bad });
    assert.ok(e instanceof EngineConfigError, `${JSON.stringify(bad)}: ${e.name}: ${e.message}`);
    assert.match(e.message, new RegExp(Object.keys(bad)[0]!));
  }
  const kv = await loadFailure(bundledModel, { ...options, blockSize: 3 });
  assert.ok(kv instanceof KVError, `${kv.name}: ${kv.message}`);
  assert.equal(kv.code, 'ERR_KV_INVALID_ARGUMENT');
  assert.match(kv.message, /blockSize/);
  const budget = await loadFailure(bundledModel, { ...options, kvMemory: 1000 });
  assert.ok(budget instanceof KVError, `${budget.name}: ${budget.message}`);
  assert.equal(budget.code, 'ERR_KV_INVALID_ARGUMENT');
});

async function drain(stream: AsyncIterable<EngineDelta>): Promise<Error | undefined> {
  try {
    for await (const _ of stream);
    return undefined;
  } catch (e) {
    return e as Error;
  }
}

test('generate: request faults arrive as their classes with their code and field; the engine goes on serving', async () => {
  const engine = await Engine.load(bundledModel, options);
  try {
    const sampling = await drain(engine.generate('Once', { temperature: -1 }));
    assert.ok(sampling instanceof SamplingError && sampling instanceof RequestFaultError, `${sampling?.name}`);
    assert.deepEqual([sampling.kind, sampling.code, sampling.param], ['request', 'invalid_value', 'temperature']);
    const long = await drain(engine.generate('Once upon a time '.repeat(60), { maxTokens: 4 }));
    assert.ok(long instanceof ContextLengthError, `${long?.name}`);
    assert.deepEqual([long.kind, long.code, long.param], ['request', 'context_length_exceeded', 'prompt']);
    const bias = await drain(engine.generate('Once', { logitBias: { 100000: 5 } }));
    assert.ok(bias instanceof RequestFaultError, `${bias?.name}`);
    assert.equal(bias.constructor, RequestFaultError);
    assert.deepEqual([bias.code, bias.param], ['invalid_value', 'logit_bias']);
    const params = await drain(engine.generate('Once', { max_tokens: 3 } as never));
    assert.ok(params instanceof RequestParamsError);
    assert.equal(await drain(engine.generate('Once', { maxTokens: 3 })), undefined);
  } finally {
    await engine.close();
  }
  const closed = await drain(engine.generate('Once'));
  assert.ok(closed instanceof EngineClosedError);
});

test('generate: a model that yields NaN logits fails each request with a ModelFaultError, an internal error with its code', async () => {
  const path = writeNanModel();
  const engine = await Engine.load(path, options);
  try {
    const e = await drain(engine.generate('Once', { maxTokens: 3 }));
    assert.ok(e instanceof ModelFaultError && e instanceof InternalEngineError, `${e?.name}: ${e?.message}`);
    assert.deepEqual([e.kind, e.code], ['internal', 'non_finite_logits']);
    assert.match(e.stack ?? '', /finite-logits\.js/);
  } finally {
    await engine.close();
    rmSync(dirname(path), { recursive: true, force: true });
  }
});
