// The chat templates of the families people download (Qwen2.5, Qwen3, Phi-3, Gemma 2/3, Mistral,
// Llama 3.x), written for vserve from each family's documented prompt format, render through vserve's
// template runtime to the strings written out here by hand from the same format facts. They use the
// idioms real templates use: namespace(), loop.first/last, raise_exception, strftime_now, tojson,
// bos_token/eos_token, add_generation_prompt and extra variables (date_string, enable_thinking, tools).
import assert from 'node:assert/strict';
import { test } from 'node:test';
import { ChatTemplate, ChatTemplateError, type ChatMessage } from '../src/model/chat-template.js';
import { chatTemplateFixture, type ChatTemplateFamily } from './chat-template-fixtures.js';

const SYSTEM: ChatMessage = { role: 'system', content: 'Be brief.' };
const TURNS: ChatMessage[] = [
  { role: 'user', content: 'Hi' },
  { role: 'assistant', content: 'Hello!' },
  { role: 'user', content: 'Name a colour.' },
];

function template(family: ChatTemplateFamily): ChatTemplate {
  const f = chatTemplateFixture(family);
  return new ChatTemplate(f.template, { bosToken: f.bosToken, eosToken: f.eosToken });
}

test('Qwen2.5: ChatML with the default system turn when none is given', () => {
  const t = template('qwen2.5');
  assert.equal(t.render([SYSTEM, ...TURNS]),
    '<|im_start|>system\nBe brief.<|im_end|>\n<|im_start|>user\nHi<|im_end|>\n<|im_start|>assistant\nHello!<|im_end|>\n' +
    '<|im_start|>user\nName a colour.<|im_end|>\n<|im_start|>assistant\n');
  assert.equal(t.render([TURNS[0]!], { addGenerationPrompt: false }),
    '<|im_start|>system\nYou are Qwen, created by Alibaba Cloud. You are a helpful assistant.<|im_end|>\n<|im_start|>user\nHi<|im_end|>\n');
});

test('Qwen3: earlier reasoning is dropped, and enable_thinking=false opens an empty think block', () => {
  const t = template('qwen3');
  const messages: ChatMessage[] = [
    { role: 'user', content: '1+1?' },
    { role: 'assistant', content: '<think>\nadd them\n</think>\n\n2' },
    { role: 'user', content: 'And 2+2?' },
  ];
  assert.equal(t.render(messages),
    '<|im_start|>user\n1+1?<|im_end|>\n<|im_start|>assistant\n2<|im_end|>\n<|im_start|>user\nAnd 2+2?<|im_end|>\n<|im_start|>assistant\n');
  assert.equal(t.render(messages.slice(0, 1), { variables: { enable_thinking: false } }),
    '<|im_start|>user\n1+1?<|im_end|>\n<|im_start|>assistant\n<think>\n\n</think>\n\n');
});

test('Phi-3: <|role|> headers and <|end|>; EOS closes a finished conversation; unknown roles are refused', () => {
  const t = template('phi-3');
  assert.equal(t.render([SYSTEM, ...TURNS]),
    '<|system|>\nBe brief.<|end|>\n<|user|>\nHi<|end|>\n<|assistant|>\nHello!<|end|>\n<|user|>\nName a colour.<|end|>\n<|assistant|>\n');
  assert.equal(t.render(TURNS.slice(0, 2), { addGenerationPrompt: false }), '<|user|>\nHi<|end|>\n<|assistant|>\nHello!<|end|>\n<|endoftext|>');
  assert.throws(() => t.render([{ role: 'tool', content: '{}' }]), (e: unknown) => e instanceof ChatTemplateError && /Phi-3 has no role tool/.test(e.message));
});

test('Gemma: BOS, the system prompt folded into the first user turn, "model" turns, alternation enforced', () => {
  const t = template('gemma');
  assert.equal(t.render([SYSTEM, ...TURNS]),
    '<bos><start_of_turn>user\nBe brief.\n\nHi<end_of_turn>\n<start_of_turn>model\nHello!<end_of_turn>\n' +
    '<start_of_turn>user\nName a colour.<end_of_turn>\n<start_of_turn>model\n');
  assert.equal(t.render([TURNS[0]!]), '<bos><start_of_turn>user\nHi<end_of_turn>\n<start_of_turn>model\n');
  assert.throws(() => t.render([TURNS[0]!, TURNS[0]!]), (e: unknown) => e instanceof ChatTemplateError && /roles must alternate/.test(e.message));
});

test('Mistral: [INST] turns, EOS after replies, the system prompt in the last user turn', () => {
  const t = template('mistral');
  assert.equal(t.render([SYSTEM, ...TURNS]), '<s>[INST] Hi[/INST] Hello!</s>[INST] Be brief.\n\nName a colour.[/INST]');
  assert.equal(t.render([TURNS[0]!]), '<s>[INST] Hi[/INST]');
  assert.throws(() => t.render([TURNS[1]!]), ChatTemplateError);
});

test('Llama 3.x: headers and <|eot_id|>, the dated system turn (date_string or strftime_now), tools as JSON', () => {
  const t = template('llama-3');
  const header = (date: string) => '<|begin_of_text|><|start_header_id|>system<|end_header_id|>\n\nCutting Knowledge Date: December 2023\nToday Date: ' + date + '\n\n';
  assert.equal(t.render([SYSTEM, ...TURNS], { variables: { date_string: '26 Jul 2024' } }),
    header('26 Jul 2024') + 'Be brief.<|eot_id|>' +
    '<|start_header_id|>user<|end_header_id|>\n\nHi<|eot_id|><|start_header_id|>assistant<|end_header_id|>\n\nHello!<|eot_id|>' +
    '<|start_header_id|>user<|end_header_id|>\n\nName a colour.<|eot_id|><|start_header_id|>assistant<|end_header_id|>\n\n');
  const day = (d: Date) => `${String(d.getDate()).padStart(2, '0')} ${d.toLocaleString('en-US', { month: 'short' })} ${d.getFullYear()}`;
  const before = day(new Date());
  const rendered = t.render([TURNS[0]!]);
  const after = day(new Date()); // the day may turn while rendering
  assert.ok([before, after].some((d) => rendered.startsWith(header(d) + '<|eot_id|>')), 'strftime_now gives today\'s date');
  const tools = [{ type: 'function', function: { name: 'get_weather', parameters: { type: 'object' } } }];
  assert.ok(t.render([TURNS[0]!], { variables: { date_string: '1 Jan 2025', tools } }).includes(
    'You have access to the following functions:\n\n{"type": "function", "function": {"name": "get_weather", "parameters": {"type": "object"}}}\n\n<|eot_id|>'));
});
