// The triggered constraint in the shapes the Llama 3.x JSON and Mistral conventions give it: a call that
// may open only at the reply's start (or after a call and "; "), whose trigger "{" is the document's own
// first byte, closed by the document's end; and a [TOOL_CALLS] array of calls, whose trigger may be
// spelled in bytes or be one control token. On the bundled model's vocabulary and on hand-made ones;
// every finished call is judged by the independent schema validator.
import assert from 'node:assert/strict';
import { test } from 'node:test';
import { GGUFFile } from '../../src/model/gguf/reader.js';
import { createTokenizer } from '../../src/model/tokenizer/index.js';
import { TriggeredConstraint, type TriggeredFormat } from '../../src/constrained/triggered-constraint.js';
import type { VocabularyTokenizer } from '../../src/constrained/vocabulary-trie.js';
import { toolCallPlan, type Tool } from '../../src/server/tool-calls.js';
import { jsonValueEnd } from '../../src/server/tool-call-json.js';
import { bundledModel } from '../paths.js';
import { satisfies } from './schema-validator.js';
import { Rng } from '../../src/engine/rng.js';

const TOOLS: Tool[] = [
  { type: 'function', function: { name: 'get_weather', parameters: { type: 'object', additionalProperties: false, required: ['city', 'days'], properties: { city: { type: 'string', maxLength: 6 }, days: { type: 'integer', minimum: 1, maximum: 7 } } } } },
  { type: 'function', function: { name: 'set_mood', parameters: { type: 'object', additionalProperties: false, required: ['mood'], properties: { mood: { enum: ['happy', 'sad'] } } } } },
];

const formatFor = (convention: 'llama-json' | 'mistral'): TriggeredFormat => toolCallPlan(TOOLS, 'auto', convention)!.params.triggeredFormat!;

function assertValidCall(call: Record<string, unknown>, key: 'arguments' | 'parameters'): void {
  const tool = TOOLS.find((t) => t.function.name === call.name);
  assert.ok(tool, `unknown tool in ${JSON.stringify(call)}`);
  assert.deepEqual(Object.keys(call).sort(), ['name', key].sort());
  assert.ok(satisfies(call[key], tool.function.parameters, true), JSON.stringify(call));
}

/** A seeded source of uniform numbers in [0, 1). */
function rng(seed: number): () => number {
  const r = new Rng(seed);
  return () => r.next();
}

function bundledTokenizer() {
  const file = GGUFFile.open(bundledModel);
  const tokenizer = createTokenizer(file);
  file.close();
  return tokenizer;
}

const decode = (tokenizer: VocabularyTokenizer, ids: readonly number[]) => new TextDecoder().decode(Buffer.concat(ids.map((id) => tokenizer.tokenToPiece(id, false))));

/** The tokens that spell `text` in this vocabulary (without the leading space SentencePiece adds). */
function spelling(tokenizer: ReturnType<typeof bundledTokenizer>, text: string): number[] {
  const ids = tokenizer.encode(text, {});
  if (ids.length > 1 && decode(tokenizer, ids.slice(1)) === text) ids.shift();
  assert.equal(decode(tokenizer, ids), text);
  return ids;
}

/**
 * Writes `lead` (tokens the test chooses), then tokens drawn at random among those allowed until the
 * call closes, then `between` and again, `calls` times, within `maxTokens`. Returns the text.
 */
function drive(c: TriggeredConstraint, tokenizer: VocabularyTokenizer, random: () => number, lead: number[], between: number[], calls: number, maxTokens: number): string {
  const eos = Array.from({ length: tokenizer.vocabSize }, (_, id) => id).filter((id) => tokenizer.isEndOfGeneration(id));
  const out: number[] = [];
  let step = 0;
  const take = (id: number) => {
    const mask = c.allowed(maxTokens - step);
    assert.equal(mask[id], 1, `token ${JSON.stringify(decode(tokenizer, [id]))} is allowed at step ${step}`);
    c.advance(id);
    out.push(id);
    step++;
  };
  for (let n = 0; n < calls; n++) {
    for (const id of n === 0 ? lead : between) take(id);
    assert.equal(c.inCall, true, `call ${n} opened`);
    while (c.inCall) {
      const mask = c.allowed(maxTokens - step);
      assert.ok(eos.every((e) => mask[e] === 0), 'end of generation is masked inside a call');
      const allowed = [...mask.keys()].filter((k) => mask[k] === 1);
      take(allowed[Math.floor(random() * allowed.length)]!);
      assert.ok(step < maxTokens, 'the call closed within the budget');
    }
    assert.ok(eos.every((e) => c.allowed(maxTokens - step)[e] === 1), 'after a call the reply may end');
  }
  return decode(tokenizer, out);
}

test('Llama 3.x on the bundled vocabulary: "{" after a blank start opens a call, "; " leads to the next, each valid with "parameters"', () => {
  const tokenizer = bundledTokenizer();
  const format = formatFor('llama-json');
  const [open] = spelling(tokenizer, '{');
  const between = spelling(tokenizer, '; {');
  const blank = spelling(tokenizer, '\n');
  let finished = 0;
  for (const seed of [1, 2, 3, 4]) {
    const c = new TriggeredConstraint(format, tokenizer);
    const text = drive(c, tokenizer, rng(seed), [...blank, open!], between, 2, 400);
    // The reply is the calls: each a whole JSON object from "{" to its "}", "; " between them.
    let at = text.indexOf('{');
    assert.equal(text.slice(0, at).trim(), '');
    for (let n = 0; n < 2; n++) {
      const end = jsonValueEnd(text, at)!;
      assertValidCall(JSON.parse(text.slice(at, end)) as Record<string, unknown>, 'parameters');
      finished++;
      at = text.indexOf('{', end);
      if (n === 0) assert.equal(text.slice(end, at), '; ');
    }
  }
  assert.equal(finished, 8);
});

test('Llama 3.x: once the reply has begun as text, "{" is free text and opens no call', () => {
  const tokenizer = bundledTokenizer();
  const c = new TriggeredConstraint(formatFor('llama-json'), tokenizer);
  for (const id of spelling(tokenizer, ' Sure {')) {
    assert.equal(c.allowed(100)[id], 1);
    c.advance(id);
  }
  assert.equal(c.inCall, false);
  // Everything is allowed, "}" and the end included: a "{" in text is no call.
  assert.ok(c.allowed(100).every((v) => v === 1));
});

test('Mistral on the bundled vocabulary: [TOOL_CALLS] spelled over several tokens opens an array of valid calls, closed by its "]"', () => {
  const tokenizer = bundledTokenizer();
  const format = formatFor('mistral');
  const trigger = spelling(tokenizer, '[TOOL_CALLS]');
  assert.ok(trigger.length > 1, 'the marker is several tokens in this vocabulary');
  let calls = 0;
  for (const seed of [1, 2, 3]) {
    const c = new TriggeredConstraint(format, tokenizer);
    const text = drive(c, tokenizer, rng(seed), [...spelling(tokenizer, ' Ok.'), ...trigger], trigger, 2, 600);
    let at = text.indexOf('[TOOL_CALLS]');
    for (let n = 0; n < 2; n++) {
      const from = text.indexOf('[', at + '[TOOL_CALLS]'.length);
      assert.equal(text.slice(at + '[TOOL_CALLS]'.length, from).trim(), '');
      const end = jsonValueEnd(text, from)!;
      const items = JSON.parse(text.slice(from, end)) as Record<string, unknown>[];
      assert.ok(items.length >= 1);
      for (const item of items) assertValidCall(item, 'arguments');
      calls += items.length;
      at = text.indexOf('[TOOL_CALLS]', end);
    }
  }
  assert.ok(calls >= 6, `calls: ${calls}`);
});

/** A hand-made vocabulary: the pieces as given; `control` has no bytes when generated but renders as `controlText`; the last id ends generation. */
function vocabulary(pieces: string[], control: number, controlText: string): VocabularyTokenizer {
  const bytes = pieces.map((p) => new TextEncoder().encode(p));
  return {
    vocabSize: pieces.length + 1,
    tokenToPiece: (id, renderSpecial = true) => (id === control ? (renderSpecial ? new TextEncoder().encode(controlText) : new Uint8Array(0)) : (bytes[id] ?? new Uint8Array(0))),
    isEndOfGeneration: (id) => id === pieces.length,
  };
}

test('Mistral with [TOOL_CALLS] as a control token: the token opens the call, reports the marker as its text, and is masked when no call fits', () => {
  const pieces = ['<ctl>', ' [', '{"name": "set_mood", "arguments": {"mood": "sad"}}', ']', 'hi', '['];
  const tokenizer = vocabulary(pieces, 0, '[TOOL_CALLS]');
  const c = new TriggeredConstraint(formatFor('mistral'), tokenizer);
  assert.equal(c.controlText(0), '[TOOL_CALLS]');
  assert.equal(c.controlText(4), '');
  assert.equal(c.allowed(100)[0], 1);
  c.advance(pieces.indexOf('hi'));
  c.advance(0);
  assert.equal(c.inCall, true);
  const mask = c.allowed(100);
  assert.deepEqual(pieces.filter((_, id) => mask[id] === 1), [' [', '[']);
  for (const p of [' [', '{"name": "set_mood", "arguments": {"mood": "sad"}}', ']']) c.advance(pieces.indexOf(p));
  assert.equal(c.inCall, false, 'the array\'s end closes the call');
  // A budget too small for any call keeps the control token out.
  const small = new TriggeredConstraint(formatFor('mistral'), tokenizer);
  assert.equal(small.allowed(3)[0], 0);
});
