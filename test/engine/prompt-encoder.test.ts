// A prompt too long for the context is refused by its size when its bytes prove it (no tokenizing at
// all), else tokenizing stops once the context is exceeded; and the engine's worker only ever gets
// token ids, so its step loop never runs a tokenizer.
import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { test } from 'node:test';
import { ContextLengthError } from '../../src/engine/completion.js';
import { Engine } from '../../src/engine/engine.js';
import type { ToWorker } from '../../src/engine/engine-messages.js';
import { PromptEncoder, maxTokenBytes } from '../../src/engine/prompt-encoder.js';
import { ChatTemplate } from '../../src/model/chat-template.js';
import type { Tokenizer } from '../../src/model/tokenizer/index.js';
import { bundledModel, repoRoot, vocabFile, STORIES_GREEDY } from '../paths.js';
import { loadTokenizer, vocabMetadata } from '../tokenizer/vocab-fixtures.js';

const SEPARATOR = '\n__ggml_vocab_test__\n';

test('the size bound holds on llama.cpp\'s own tokenizations: ids >= bytes / maxTokenBytes', () => {
  for (const name of ['llama-spm', 'gpt-2', 'falcon', 'starcoder', 'mpt']) {
    const tokenizer = loadTokenizer(name);
    const max = maxTokenBytes(tokenizer);
    const inputs = readFileSync(`${vocabFile(name)}.inp`, 'utf8').split(SEPARATOR).slice(0, -1);
    const outputs = readFileSync(`${vocabFile(name)}.out`, 'utf8').split('\n').slice(0, -1);
    inputs.forEach((text, i) => {
      const ids = outputs[i]!.split(' ').filter((s) => s !== '').length;
      const bound = Math.ceil(Buffer.byteLength(text) / max);
      assert.ok(ids >= bound, `${name} ${JSON.stringify(text)}: ${ids} ids, bound ${bound}`);
    });
    // And on long texts our tokenizer encodes, where merges reach their longest pieces.
    const long = (STORIES_GREEDY + ' ').repeat(20);
    assert.ok(tokenizer.encode(long).length >= Math.ceil(Buffer.byteLength(long) / max), name);
  }
});

/** The bundled model's tokenizer with its encode calls counted. */
function countingTokenizer(): { tokenizer: Tokenizer; calls: () => number } {
  const inner = loadTokenizer('stories260K');
  let calls = 0;
  const tokenizer = new Proxy(inner, {
    get(target, prop, receiver) {
      if (prop === 'encode') return (...args: Parameters<Tokenizer['encode']>) => (calls++, target.encode(...args));
      const v = Reflect.get(target, prop, receiver);
      return typeof v === 'function' ? v.bind(target) : v;
    },
  });
  return { tokenizer, calls: () => calls };
}

test('a 3.9 MiB prompt is refused by its size without being tokenized, as text or as a chat', () => {
  const { tokenizer, calls } = countingTokenizer();
  const encoder = new PromptEncoder(tokenizer, ChatTemplate.fromGGUF(vocabMetadata('stories260K')), 512);
  const huge = 'Once upon a time '.repeat(240_000);
  assert.throws(() => encoder.encode(huge), (e: unknown) => e instanceof ContextLengthError && /at least \d+ tokens \(4080000 bytes/.test((e as Error).message));
  assert.throws(() => encoder.encode([{ role: 'user', content: huge }]), ContextLengthError);
  assert.equal(calls(), 0);
  // A prompt that fits is tokenized as before.
  assert.deepEqual(encoder.encode('Once upon a time').tokens, tokenizer.encode('Once upon a time', { addSpecial: true }));
});

test('a prompt under the size bound but past the context is tokenized once and refused', () => {
  const { tokenizer, calls } = countingTokenizer();
  const encoder = new PromptEncoder(tokenizer, ChatTemplate.fromGGUF(vocabMetadata('stories260K')), 64);
  // About 3 bytes per token in this vocabulary: 300 bytes is over 64 tokens (103), under 64 x 7 bytes.
  const text = STORIES_GREEDY.slice(0, 300);
  assert.ok(Buffer.byteLength(text) < 64 * encoder.maxTokenBytes);
  assert.throws(() => encoder.encode(text), (e: unknown) => e instanceof ContextLengthError && /at least \d+ tokens; the context holds 64/.test((e as Error).message));
  assert.equal(calls(), 1);
  assert.throws(() => encoder.encode(Array(64).fill(1)), /the prompt has 64 tokens; the context holds 64/);
});

test('byte-level BPE stops tokenizing once past the limit, with the ids so far a prefix of the whole', () => {
  const tokenizer = loadTokenizer('gpt-2');
  const text = (STORIES_GREEDY + '\n').repeat(50);
  const whole = tokenizer.encode(text);
  const cut = tokenizer.encode(text, { stopAfter: 100 });
  assert.ok(whole.length > 2000);
  assert.ok(cut.length > 100 && cut.length < 110, String(cut.length));
  assert.deepEqual(cut, whole.slice(0, cut.length));
});

test('the engine worker gets token ids only, and never sees a prompt refused by size', async () => {
  const engine = await Engine.load(bundledModel, { backend: 'reference', kvManager: 'paged', maxContext: 512, maxSeqs: 2 });
  const posted: ToWorker[] = [];
  const worker = (engine as unknown as { worker: { postMessage(m: ToWorker): void } }).worker;
  const post = worker.postMessage.bind(worker);
  worker.postMessage = (m: ToWorker) => {
    posted.push(m);
    post(m);
  };
  try {
    let text = '';
    for await (const d of engine.generate('Once upon a time', { maxTokens: 8, temperature: 0 })) text += d.text;
    assert.ok(STORIES_GREEDY.startsWith(text), text);
    for await (const _ of engine.generate([{ role: 'user', content: 'Hi' }], { maxTokens: 2 })) void _;
    await assert.rejects(async () => {
      for await (const _ of engine.generate('x'.repeat(4_000_000))) void _;
    }, ContextLengthError);
    const submits = posted.filter((m) => m.type === 'submit');
    assert.equal(submits.length, 2);
    for (const m of submits) assert.ok(Array.isArray(m.input) && m.input.every((t) => typeof t === 'number'));
  } finally {
    await engine.close();
  }
});

test('a raw text prompt reads control-token texts as the tokens, as llama-server does', () => {
  const tokenizer = loadTokenizer('stories260K');
  const encoder = new PromptEncoder(tokenizer, new ChatTemplate(undefined), 256);
  const ids = encoder.encode('Once</s><s>Once').tokens;
  assert.deepEqual(ids, [tokenizer.bos, ...tokenizer.encode('Once'), tokenizer.eos, tokenizer.bos, ...tokenizer.encode('Once')]);
});

test('a request\'s tools reach the chat template, which renders them into the prompt (documents or not)', () => {
  const tokenizer = loadTokenizer('stories260K');
  const template = new ChatTemplate(readFileSync(join(repoRoot, 'test', 'fixtures', 'chat-templates', 'hermes-tools.jinja'), 'utf8'));
  const encoder = new PromptEncoder(tokenizer, template, 4096);
  const tools = [{ type: 'function', function: { name: 'get_weather', parameters: { type: 'object' } } }];
  const messages = [{ role: 'user', content: 'Hi' }];
  const text = (ids: readonly number[]) => tokenizer.decode([...ids], { skipSpecial: true });
  assert.match(text(encoder.encode(messages, { tools }).tokens), /"name": "get_weather"[\s\S]*<tool_call>/);
  assert.doesNotMatch(text(encoder.encode(messages).tokens), /get_weather/);
  const withDocument = [{ role: 'user', content: [{ type: 'text' as const, text: 'Read this.', document: true }] }];
  assert.match(text(encoder.encode(withDocument, { tools }).tokens), /"name": "get_weather"[\s\S]*Read this\./);
});
