// The lazy tool-call constraint: free text until the trigger, then a call the schema accepts and the
// closing text, then free again. Checked on the bundled model's vocabulary (the tag spelled over several
// tokens), through the engine with the model's own logits, and on a small hand-made vocabulary whose
// tokens carry bytes past the trigger. Each finished call is judged by the independent schema validator.
import assert from 'node:assert/strict';
import { after, before, test } from 'node:test';
import { Engine, type EngineDelta } from '../../src/index.js';
import { GGUFFile } from '../../src/model/gguf/reader.js';
import { createTokenizer } from '../../src/model/tokenizer/index.js';
import { TriggeredConstraint, type TriggeredFormat } from '../../src/constrained/triggered-constraint.js';
import type { VocabularyTokenizer } from '../../src/constrained/vocabulary-trie.js';
import { toolCallPlan, type Tool } from '../../src/server/tool-calls.js';
import { bundledModel } from '../paths.js';
import { virtualUnavailable } from '../engine/engine-helpers.js';
import { satisfies } from './schema-validator.js';
import { Rng } from '../../src/engine/rng.js';

const TOOLS: Tool[] = [
  { type: 'function', function: { name: 'get_weather', parameters: { type: 'object', additionalProperties: false, required: ['city', 'days'], properties: { city: { type: 'string', maxLength: 6 }, days: { type: 'integer', minimum: 1, maximum: 7 } } } } },
  { type: 'function', function: { name: 'set_mood', parameters: { type: 'object', additionalProperties: false, required: ['mood'], properties: { mood: { enum: ['happy', 'sad'] } } } } },
];

/** The triggered format the server sends for these tools with tool_choice "auto" on a Hermes template. */
function hermesFormat(): TriggeredFormat {
  const plan = toolCallPlan(TOOLS, 'auto', 'hermes');
  return plan!.params.triggeredFormat!;
}

/** The JSON of each call in `text` (between each trigger and the next close), and whether the last is unfinished. */
function callsIn(text: string, trigger: string, close: string): { calls: string[]; open: boolean } {
  const calls: string[] = [];
  let at = text.indexOf(trigger);
  while (at >= 0) {
    const end = text.indexOf(close, at + trigger.length);
    if (end < 0) return { calls, open: true };
    calls.push(text.slice(at + trigger.length, end));
    at = text.indexOf(trigger, end + close.length);
  }
  return { calls, open: false };
}

function assertValidCall(json: string): void {
  const call = JSON.parse(json) as { name: string; arguments: unknown };
  const tool = TOOLS.find((t) => t.function.name === call.name);
  assert.ok(tool, `unknown tool in ${json}`);
  assert.deepEqual(Object.keys(call).sort(), ['arguments', 'name']);
  assert.ok(satisfies(call.arguments, tool.function.parameters, true), json);
}

/** A seeded source of uniform numbers in [0, 1). */
function rng(seed: number): () => number {
  const r = new Rng(seed);
  return () => r.next();
}

/** A tag is only kept out of free text when the budget left is too small for the shortest call (about 60 bytes here). */
function assertTooLate(left: number): boolean {
  assert.ok(left < 80, `the tag was masked with ${left} tokens left`);
  return true;
}

test('bundled vocabulary: a tag spelled over several tokens opens a call; every call closes valid within the budget', () => {
  const file = GGUFFile.open(bundledModel);
  const tokenizer = createTokenizer(file);
  file.close();
  const format = hermesFormat();
  const spelled = tokenizer.encode(format.trigger, {}).filter((id) => tokenizer.tokenToPiece(id, false).length > 0 && new TextDecoder().decode(tokenizer.tokenToPiece(id, false)).trim() !== '');
  assert.ok(spelled.length > 1, 'the tag is several tokens in this vocabulary');
  const eos = Array.from({ length: tokenizer.vocabSize }, (_, id) => id).filter((id) => tokenizer.isEndOfGeneration(id));
  let finished = 0;
  for (const seed of [1, 2, 3, 4, 5]) {
    const random = rng(seed);
    const maxTokens = 160;
    const c = new TriggeredConstraint(format, tokenizer);
    const out: number[] = [];
    let spelling = 0;
    for (let step = 0; step < maxTokens; step++) {
      const mask = c.allowed(maxTokens - step);
      let id: number;
      if (c.inCall) {
        assert.ok(eos.every((e) => mask[e] === 0), 'end of generation is masked inside a call');
        const allowed = [...mask.keys()].filter((k) => mask[k] === 1);
        id = allowed[Math.floor(random() * allowed.length)]!;
      } else if (spelling < spelled.length && step > 2 && (mask[spelled[spelling]!] === 1 || !assertTooLate(maxTokens - step))) {
        id = spelled[spelling++]!;
      } else {
        assert.ok(eos.every((e) => mask[e] === 1), 'free text may end');
        id = tokenizer.encode(' the', {}).at(-1)!;
      }
      c.advance(id);
      out.push(id);
      if (!c.inCall && spelling === spelled.length) spelling = 0;
    }
    const text = new TextDecoder().decode(Buffer.concat(out.map((id) => tokenizer.tokenToPiece(id, false))));
    const { calls, open } = callsIn(text, format.trigger, format.close);
    assert.equal(open, false, `a call was left open: ${text}`);
    for (const json of calls) assertValidCall(json);
    finished += calls.length;
  }
  assert.ok(finished >= 5, `calls finished: ${finished}`);
});

let engine: Engine;
before(async () => {
  engine = await Engine.load(bundledModel, { backend: 'reference', kvManager: virtualUnavailable() ? 'paged' : 'virtual', maxContext: 256, maxSeqs: 4 });
});
after(() => engine.close());

test('engine: with the model choosing every token inside, each call it is pushed into (logit_bias on a one-token trigger) matches the schema', async () => {
  // "@" is one token in this vocabulary; the bias makes the model open calls, the mask decides their content.
  const format: TriggeredFormat = { ...hermesFormat(), trigger: '@' };
  const file = GGUFFile.open(bundledModel);
  const tokenizer = createTokenizer(file);
  file.close();
  const trigger = tokenizer.encode('@', {}).filter((id) => new TextDecoder().decode(tokenizer.tokenToPiece(id, false)) === '@');
  assert.equal(trigger.length, 1, '"@" is one token');
  let finished = 0;
  for (const seed of [1, 2, 3, 4]) {
    const deltas: EngineDelta[] = [];
    for await (const d of engine.generate('Once upon a time', { triggeredFormat: format, logitBias: { [trigger[0]!]: 30 }, seed, temperature: 1, maxTokens: 120 })) deltas.push(d);
    const text = deltas.map((d) => d.text).join('');
    const { calls, open } = callsIn(text, format.trigger, format.close);
    assert.equal(open, false, `a call was left open: ${text}`);
    for (const json of calls) assertValidCall(json);
    finished += calls.length;
  }
  assert.ok(finished >= 2, `calls finished: ${finished}`);
});

/** A hand-made vocabulary: each token's bytes as given; the last token ends generation. */
function vocabulary(pieces: string[]): VocabularyTokenizer {
  const bytes = pieces.map((p) => new TextEncoder().encode(p));
  return { vocabSize: pieces.length + 1, tokenToPiece: (id) => bytes[id] ?? new Uint8Array(0), isEndOfGeneration: (id) => id === pieces.length };
}

test('a token that would finish the trigger with bytes no call can begin with is masked, in free text and mid-tag', () => {
  const pieces = ['<tool_call>', '<tool_call>\n{', '<tool_call>x', '<tool', '_call>', '_call>{"', '_call>]', 'hello', '<', 'name'];
  const c = new TriggeredConstraint({ ...hermesFormat() }, vocabulary(pieces));
  const allowedNames = (mask: Uint8Array) => pieces.filter((_, id) => mask[id] === 1);
  // Free text: everything but the tag followed by "x" (a call is a JSON object), and end of generation.
  assert.deepEqual(allowedNames(c.allowed(100)), pieces.filter((p) => p !== '<tool_call>x'));
  assert.equal(c.allowed(100)[pieces.length], 1);
  c.advance(pieces.indexOf('<tool'));
  assert.equal(c.inCall, false);
  // Mid-tag: "_call>]" would open a call with "]".
  assert.deepEqual(allowedNames(c.allowed(100)), pieces.filter((p) => p !== '<tool_call>x' && p !== '_call>]'));
  c.advance(pieces.indexOf('_call>{"'));
  assert.equal(c.inCall, true);
  assert.equal(c.allowed(100)[pieces.length], 0, 'no end of generation inside a call');
  // A budget too small for any call keeps the tag out.
  const small = new TriggeredConstraint({ ...hermesFormat() }, vocabulary(pieces));
  assert.deepEqual(allowedNames(small.allowed(3)).filter((p) => p.startsWith('<tool_call>')), []);
});

test('a triggered format without a trigger, or with a gap holding the trigger\'s first character, is the request\'s fault, naming the field', () => {
  const tokenizer = vocabulary(['a']);
  assert.throws(() => new TriggeredConstraint({ ...hermesFormat(), trigger: '' }, tokenizer), { name: 'RequestFaultError', param: 'triggeredFormat' });
  assert.throws(() => new TriggeredConstraint({ ...hermesFormat(), gap: ' <' }, tokenizer), { name: 'RequestFaultError', param: 'triggeredFormat' });
  // An empty closing text is allowed: the document's end ends the call (triggered-constraint-conventions.test.ts).
  assert.doesNotThrow(() => new TriggeredConstraint({ ...hermesFormat(), close: '' }, tokenizer));
});
