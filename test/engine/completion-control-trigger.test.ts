// A trigger that the vocabulary has as a control token (Mistral's [TOOL_CALLS]): generated text leaves
// control tokens out, but this one is written as its text, so the reply's reader sees where the calls
// begin. A hand-made vocabulary and greedy picks from made-up logits drive a Completion through text,
// the control token, a call and the end of generation; the text is then read as Mistral's reply.
import assert from 'node:assert/strict';
import { test } from 'node:test';
import { Completion, type GenerationTokenizer } from '../../src/engine/completion.js';
import { toolCallPlan, type Tool } from '../../src/server/tool-calls.js';
import { parseMistralReply } from '../../src/server/mistral-calls.js';

const PIECES = ['<control>', 'Hi.', ' [', '{"name": "set_mood", "arguments": {"mood": "sad"}}', ']'];
const CONTROL = 0;
const EOS = PIECES.length;

const tokenizer: GenerationTokenizer = {
  vocabSize: PIECES.length + 1,
  encode: () => [],
  isEndOfGeneration: (id) => id === EOS,
  tokenToPiece: (id, renderSpecial = true) => new TextEncoder().encode(id === CONTROL ? (renderSpecial ? '[TOOL_CALLS]' : '') : (PIECES[id] ?? '')),
  streamDecoder: () => ({ push: (id) => (id === CONTROL || id === EOS ? '' : PIECES[id]!), flush: () => '' }),
};

const TOOLS: Tool[] = [{ type: 'function', function: { name: 'set_mood', parameters: { type: 'object', required: ['mood'], properties: { mood: { enum: ['happy', 'sad'] } } } } }];

/** Logits that make `id` the greedy pick. */
function favouring(id: number): Float32Array {
  const logits = new Float32Array(PIECES.length + 1);
  logits[id] = 10;
  return logits;
}

test('the control token that spells the trigger is written as [TOOL_CALLS]; other control tokens stay out of the text', () => {
  const triggeredFormat = toolCallPlan(TOOLS, 'auto', 'mistral')!.params.triggeredFormat!;
  const c = new Completion(tokenizer, { triggeredFormat, temperature: 0 }, 50);
  let text = '';
  for (const id of [1, CONTROL, 2, 3, 4, EOS]) text += c.accept(favouring(id))?.text ?? '';
  assert.equal(c.finishReason, 'stop');
  assert.equal(text, 'Hi.[TOOL_CALLS] [{"name": "set_mood", "arguments": {"mood": "sad"}}]');
  const reply = parseMistralReply(text)!;
  assert.equal(reply.content, 'Hi.');
  assert.deepEqual(reply.calls.map((call) => [call.function.name, JSON.parse(call.function.arguments)]), [['set_mood', { mood: 'sad' }]]);
  // Without a trigger it spells, the same token adds nothing.
  const plain = new Completion(tokenizer, { temperature: 0 }, 50);
  assert.equal(plain.accept(favouring(CONTROL))?.text, '');
});
