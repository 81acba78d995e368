// Documents marked in a prompt become token ranges, on the bundled model's own tokenizer: each range
// decodes back to its document's text, a document's ids are the same wherever it appears (in any order,
// after any text, in any message), the rest of the prompt is all still there, and prompts without marks
// (or without opting in) are tokenized exactly as before.
import assert from 'node:assert/strict';
import { test } from 'node:test';
import type { ChatMessage } from '../../src/engine/chat-message.js';
import { ContextLengthError } from '../../src/engine/completion.js';
import { RequestFaultError } from '../../src/engine/error-kind.js';
import { PromptEncoder, type EncodedPrompt } from '../../src/engine/prompt-encoder.js';
import { ChatTemplate } from '../../src/model/chat-template.js';
import { Engine } from '../../src/engine/engine.js';
import type { ToWorker } from '../../src/engine/engine-messages.js';
import type { EngineInput, RequestParams } from '../../src/engine/engine-types.js';
import { EngineConfigError } from '../../src/engine/option-keys.js';
import { bundledModel } from '../paths.js';
import { CHAT_TEMPLATE_FAMILIES, chatTemplateFixture } from '../chat-template-fixtures.js';
import { loadTokenizer } from '../tokenizer/vocab-fixtures.js';

const tokenizer = loadTokenizer('stories260K');
const fallback = new ChatTemplate(undefined);

const LILY = 'Lily had a red ball. She liked to throw it high.';
const TOM = 'Tom saw a big dog in the park. The dog was happy.';
const SUN = 'The sun was warm and the sky was blue.';

/** A document's ids as the tokenizer gives them for its text alone, with nothing added. */
const alone = (text: string) => tokenizer.encode(text, { parseSpecial: true });

/** The ranges hold what the engine trusts: in order, disjoint, non-empty, inside the prompt, never its last token. */
function assertWellFormed(p: EncodedPrompt): void {
  let end = 0;
  for (const [s, e] of p.documents ?? []) {
    assert.ok(Number.isInteger(s) && Number.isInteger(e) && s >= end && e > s, `range [${s}, ${e}) after ${end}`);
    end = e;
  }
  assert.ok(end < p.tokens.length, 'the last token is outside every document');
}

const rangeText = (p: EncodedPrompt, i: number) => tokenizer.decode(p.tokens.slice(...p.documents![i]!));
const rangeIds = (p: EncodedPrompt, i: number) => p.tokens.slice(...p.documents![i]!);
const spaceless = (s: string) => s.replace(/\s+/g, '');
/** The prompt's text after its BOS. */
const textOf = (p: EncodedPrompt) => (assert.equal(p.tokens[0], tokenizer.bos), tokenizer.decode(p.tokens.slice(1)));

test('a blending text prompt: the leading text, documents between separators, the question; ranges decode to the documents', () => {
  const encoder = new PromptEncoder(tokenizer, fallback, 512);
  const lead = 'You answer questions about stories.';
  const question = 'What did Lily have?';
  const p = encoder.encode([lead, LILY, TOM, question].join(' # # '), { blend: true });
  assertWellFormed(p);
  assert.equal(p.documents?.length, 2);
  assert.equal(rangeText(p, 0), LILY);
  assert.equal(rangeText(p, 1), TOM);
  assert.deepEqual(rangeIds(p, 0), alone(LILY));
  assert.deepEqual(rangeIds(p, 1), alone(TOM));
  assert.equal(p.tokens[0], tokenizer.bos);
  // The separators are gone; SentencePiece starts each piece as it starts a text (with a space).
  assert.equal(textOf(p), [lead, LILY, TOM, question].join(' '));
  assert.ok(!textOf(p).includes('#'));
});

test('a document has the same ids wherever it appears, in any order, after any leading text', () => {
  const encoder = new PromptEncoder(tokenizer, fallback, 512);
  const a = encoder.encode(`Read. # # ${LILY} # # ${TOM} # # ${SUN} # # Why?`, { blend: { recompute: 0.15 } });
  const b = encoder.encode(`A much longer system prompt, with commas, and more words # # ${SUN} # # ${LILY} # # Who?`, { blend: true });
  assertWellFormed(a);
  assertWellFormed(b);
  assert.deepEqual(rangeIds(a, 0), rangeIds(b, 1));
  assert.deepEqual(rangeIds(a, 2), rangeIds(b, 0));
  assert.notEqual(a.documents![0]![0], b.documents![1]![0], 'the document sits at another position');
});

test('without opting in, or without documents, a text prompt is tokenized exactly as before', () => {
  const encoder = new PromptEncoder(tokenizer, fallback, 512);
  const text = `Sys # # ${LILY} # # Why?`;
  const today = tokenizer.encode(text, { addSpecial: true, parseSpecial: true });
  for (const blend of [undefined, false] as const) {
    const p = encoder.encode(text, { blend });
    assert.deepEqual(p.tokens, today);
    assert.equal(p.documents, undefined);
  }
  const plain = encoder.encode(LILY, { blend: true });
  assert.deepEqual(plain.tokens, tokenizer.encode(LILY, { addSpecial: true, parseSpecial: true }));
  assert.equal(plain.documents, undefined);
  // Two pieces: a leading text and a question, no document.
  const two = encoder.encode(`Sys # # ${LILY}`, { blend: true });
  assert.equal(two.documents, undefined);
  assert.equal(textOf(two), `Sys ${LILY}`);
});

test('empty documents are none, and a document that would end the prompt is none either', () => {
  const encoder = new PromptEncoder(tokenizer, fallback, 512);
  const empty = encoder.encode(`Sys # #  # # ${LILY} # # Why?`, { blend: true });
  assertWellFormed(empty);
  assert.equal(empty.documents?.length, 1);
  assert.equal(rangeText(empty, 0), LILY);
  // No question: the last document holds the last token, which must be computed, so it is no document.
  const noQuestion = encoder.encode(`Sys # # ${LILY} # # ${TOM} # # `, { blend: true });
  assertWellFormed(noQuestion);
  assert.equal(noQuestion.documents?.length, 1);
  assert.equal(rangeText(noQuestion, 0), LILY);
  assert.equal(textOf(noQuestion), `Sys ${LILY} ${TOM}`);
  // An empty leading text still starts with BOS, outside the documents.
  const noLead = encoder.encode(` # # ${LILY} # # Why?`, { blend: true });
  assert.deepEqual(noLead.documents, [[1, 1 + alone(LILY).length]]);
  assert.deepEqual(noLead.tokens.slice(0, 1), [tokenizer.bos]);
});

test('the engine\'s separator is the one that cuts', () => {
  const encoder = new PromptEncoder(tokenizer, fallback, 512, '\n---\n');
  const p = encoder.encode(`Sys\n---\n${LILY}\n---\nWhy? # # not a cut`, { blend: true });
  assertWellFormed(p);
  assert.equal(p.documents?.length, 1);
  assert.equal(rangeText(p, 0), LILY);
  assert.equal(textOf(p), `Sys ${LILY} Why? # # not a cut`);
});

test('a prompt cut into pieces is judged on its whole length', () => {
  // Each piece fits 64 tokens; together they do not.
  const encoder = new PromptEncoder(tokenizer, fallback, 64);
  const pieces = ['Sys', LILY, TOM, SUN, LILY, TOM, 'Why?'];
  assert.ok(pieces.every((t) => alone(t).length < 30));
  assert.throws(() => encoder.encode(pieces.join(' # # '), { blend: true }), (e: unknown) => e instanceof ContextLengthError && /the prompt has at least \d+ tokens; the context holds 64/.test((e as Error).message));
  const chat: ChatMessage[] = [{ role: 'user', content: pieces.map((text) => ({ type: 'text' as const, text, document: true })) }];
  assert.throws(() => encoder.encode(chat), ContextLengthError);
  // Far over, by bytes alone, before any tokenizing.
  const huge = new PromptEncoder(tokenizer, fallback, 512);
  assert.throws(() => huge.encode(`Sys # # ${'x'.repeat(10_000)} # # Why?`, { blend: true }), /at least \d+ tokens \(10007 bytes/);
  // The cap of a prompt kept within the context by eviction applies to the whole as well.
  assert.equal(encoder.encode(pieces.join(' # # '), { blend: true, bounded: true }).documents?.length, 5);
});

const marked = (text: string): { type: 'text'; text: string; document: true } => ({ type: 'text', text, document: true });
const part = (text: string): { type: 'text'; text: string } => ({ type: 'text', text });

test('chat: parts marked as documents become ranges, and the whole rendered prompt is still there', () => {
  const encoder = new PromptEncoder(tokenizer, fallback, 512);
  const messages: ChatMessage[] = [
    { role: 'system', content: [part('You tell stories. '), marked(SUN)] },
    { role: 'user', content: [part('Read these: '), marked(LILY), marked(TOM), part(' Who is Lily?')] },
  ];
  const p = encoder.encode(messages);
  assertWellFormed(p);
  assert.equal(p.documents?.length, 3);
  [SUN, LILY, TOM].forEach((doc, i) => {
    assert.equal(rangeText(p, i), doc);
    assert.deepEqual(rangeIds(p, i), alone(doc));
  });
  assert.equal(p.tokens[0], tokenizer.bos);
  const flat = fallback.render(messages.map((m) => ({ role: m.role, content: (m.content as readonly { text: string }[]).map((x) => x.text).join("") })));
  assert.equal(spaceless(textOf(p)), spaceless(flat));
});

test('chat: a document has the same ids in another message, order and turn', () => {
  const encoder = new PromptEncoder(tokenizer, fallback, 512);
  const a = encoder.encode([{ role: 'user', content: [marked(LILY), part(' and '), marked(TOM), part(' Why?')] }]);
  const b = encoder.encode([
    { role: 'system', content: [marked(TOM)] },
    { role: 'user', content: 'Something first.' },
    { role: 'assistant', content: 'Yes.' },
    { role: 'user', content: [part('Then: '), marked(LILY)] },
  ]);
  assertWellFormed(a);
  assertWellFormed(b);
  assert.deepEqual(rangeIds(a, 0), rangeIds(b, 1));
  assert.deepEqual(rangeIds(a, 1), rangeIds(b, 0));
});

test('chat without document parts is tokenized exactly as before; blend false keeps the marks\' tokens but no ranges', () => {
  const encoder = new PromptEncoder(tokenizer, fallback, 512);
  const text = [{ role: 'system', content: 'You tell stories.' }, { role: 'user', content: `Read: ${LILY} Who is Lily?` }];
  const today = tokenizer.encode(fallback.render(text), { addSpecial: true, parseSpecial: true });
  assert.deepEqual(encoder.encode(text).tokens, today);
  assert.equal(encoder.encode(text).documents, undefined);
  // Parts without marks are joined, as the server always did.
  const parts: ChatMessage[] = [text[0]!, { role: 'user', content: [part('Read: '), part(LILY), { type: 'text', text: ' Who is Lily?', document: false }] }];
  assert.deepEqual(encoder.encode(parts), { tokens: today });
  assert.deepEqual(encoder.encode(parts, { blend: true }), { tokens: today });
  const withMarks: ChatMessage[] = [text[0]!, { role: 'user', content: [part('Read: '), marked(LILY), part(' Who is Lily?')] }];
  const off = encoder.encode(withMarks, { blend: false });
  assert.equal(off.documents, undefined);
  assert.deepEqual(off.tokens, encoder.encode(withMarks).tokens);
});

test('chat under real templates: documents decode back, BOS once, nothing lost', () => {
  for (const family of CHAT_TEMPLATE_FAMILIES) {
    const { template, bosToken, eosToken } = chatTemplateFixture(family);
    // The bundled vocabulary spells BOS "<s>": a template that writes it there gets the token, once.
    const chat = new ChatTemplate(template, { bosToken, eosToken });
    const encoder = new PromptEncoder(tokenizer, chat, 512);
    const messages: ChatMessage[] = [
      { role: 'system', content: 'You tell stories.' },
      { role: 'user', content: [part('Read: '), marked(LILY), part(' and '), marked(TOM), part(' Who is Lily?')] },
    ];
    let p: EncodedPrompt;
    try {
      p = encoder.encode(messages);
    } catch (e) {
      // Templates without a system role refuse this conversation whatever its marks.
      assert.ok(e instanceof RequestFaultError, `${family}: ${(e as Error).message}`);
      assert.throws(() => encoder.encode([messages[0]!, { role: 'user', content: `Read: ${LILY} and ${TOM} Who is Lily?` }]), RequestFaultError);
      continue;
    }
    assertWellFormed(p);
    assert.equal(p.documents?.length, 2, family);
    assert.equal(rangeText(p, 0), LILY, family);
    assert.equal(rangeText(p, 1), TOM, family);
    assert.equal(p.tokens[0], tokenizer.bos, family);
    assert.notEqual(p.tokens[1], tokenizer.bos, `${family}: BOS once`);
    const flat = chat.render([messages[0]! as { role: string; content: string }, { role: 'user', content: `Read: ${LILY} and ${TOM} Who is Lily?` }]);
    assert.equal(spaceless(tokenizer.decode(p.tokens)), spaceless(flat.startsWith('<s>') ? flat : `<s>${flat}`), family);
  }
});

test('chat: a template that writes a message twice writes its documents twice; one that drops it drops them', () => {
  const twice = new PromptEncoder(tokenizer, new ChatTemplate('{% for m in messages %}{{ m.content }} | {{ m.content }}\n{% endfor %}Answer:'), 512);
  const p = twice.encode([{ role: 'user', content: [part('See '), marked(LILY), part(' now')] }]);
  assertWellFormed(p);
  assert.equal(p.documents?.length, 2);
  assert.equal(rangeText(p, 0), LILY);
  assert.equal(rangeText(p, 1), LILY);
  const usersOnly = new PromptEncoder(tokenizer, new ChatTemplate('{% for m in messages %}{% if m.role == "user" %}{{ m.content }}\n{% endif %}{% endfor %}Answer:'), 512);
  const q = usersOnly.encode([{ role: 'system', content: [marked(TOM)] }, { role: 'user', content: [marked(LILY), part(' Why?')] }]);
  assert.equal(q.documents?.length, 1);
  assert.equal(rangeText(q, 0), LILY);
  assert.ok(!tokenizer.decode(q.tokens).includes('Tom'));
  // A template whose text ends with a document: that document holds the last token, so it is none.
  const bare = new PromptEncoder(tokenizer, new ChatTemplate('{% for m in messages %}{{ m.content }}{% endfor %}'), 512);
  const r = bare.encode([{ role: 'user', content: [part('Hi. '), marked(TOM), part(' Then '), marked(LILY)] }]);
  assertWellFormed(r);
  assert.equal(r.documents?.length, 1);
  assert.equal(rangeText(r, 0), TOM);
});

test('chat: text that looks like the encoder\'s own sentinel is left as it is', () => {
  const encoder = new PromptEncoder(tokenizer, fallback, 512);
  const lookalike = 'odd \uE000vserve-document-0:0\uE001 text';
  const p = encoder.encode([{ role: 'user', content: [part(lookalike), marked(LILY), part(' Why?')] }]);
  assertWellFormed(p);
  assert.equal(p.documents?.length, 1);
  assert.equal(rangeText(p, 0), LILY);
  assert.ok(textOf(p).includes(lookalike));
});

test('malformed chat content is the request\'s fault, named', () => {
  const encoder = new PromptEncoder(tokenizer, fallback, 512);
  const bad = (content: unknown) => () => encoder.encode([{ role: 'user', content } as ChatMessage]);
  const fault = (pattern: RegExp) => (e: unknown) => e instanceof RequestFaultError && e.code === 'invalid_type' && pattern.test(e.message);
  assert.throws(bad([{ type: 'text', text: 'a', document: 'yes' }]), fault(/part 0: document must be true or false/));
  assert.throws(bad([{ type: 'image_url', image_url: 'x' }]), fault(/part 0: a content part must be/));
  assert.throws(bad(42), fault(/content must be a string or an array of text parts/));
});

test('Engine.generate sends the ranges to the worker as params.documents, from its own separator', async () => {
  await assert.rejects(Engine.load(bundledModel, { backend: 'reference', blendSeparator: '' }), (e: unknown) => e instanceof EngineConfigError && /blendSeparator must be a non-empty string/.test((e as Error).message));
  const engine = await Engine.load(bundledModel, { backend: 'reference', kvManager: 'paged', maxContext: 256, maxSeqs: 2, blendSeparator: ' | ' });
  const submits: Extract<ToWorker, { type: 'submit' }>[] = [];
  const worker = (engine as unknown as { worker: { postMessage(m: ToWorker): void } }).worker;
  const post = worker.postMessage.bind(worker);
  worker.postMessage = (m: ToWorker) => {
    if (m.type === 'submit') submits.push(m);
    post(m);
  };
  const run = async (input: EngineInput, params: RequestParams) => {
    for await (const _ of engine.generate(input, { maxTokens: 2, ...params })) void _;
    const m = submits.at(-1)!;
    return { tokens: m.input as number[], params: m.params };
  };
  try {
    const text = await run(`Sys | ${LILY} | ${TOM} | the question # # its end`, { blend: true });
    assert.deepEqual(text.params.documents?.map(([s, e]) => tokenizer.decode(text.tokens.slice(s, e))), [LILY, TOM]);
    const chat: ChatMessage[] = [{ role: 'user', content: [part('Read: '), marked(LILY), part(' Why?')] }];
    const on = await run(chat, {});
    assert.equal(on.params.blend, true);
    assert.deepEqual(on.params.documents?.map(([s, e]) => tokenizer.decode(on.tokens.slice(s, e))), [LILY]);
    const off = await run(chat, { blend: false });
    assert.deepEqual(off.tokens, on.tokens);
    assert.equal(off.params.documents, undefined);
    assert.equal(off.params.blend, false);
    // Ranges given by the caller travel only with token ids; with text they would contradict the marks.
    const ids = await run(on.tokens, { blend: true, documents: [[2, 5]] });
    assert.deepEqual(ids.params.documents, [[2, 5]]);
    const before = submits.length;
    await assert.rejects(run('Sys | doc | q', { blend: true, documents: [[1, 2]] }), (e: unknown) => (e as RequestFaultError).kind === 'request' && (e as RequestFaultError).param === 'documents');
    assert.equal(submits.length, before, 'refused before the worker');
  } finally {
    await engine.close();
  }
});
