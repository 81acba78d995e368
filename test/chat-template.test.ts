// Chat templates rendered from real model templates (as published in the models' tokenizer_config.json)
// with known messages, the fallback format, and the errors.
import assert from 'node:assert/strict';
import { test } from 'node:test';
import { GGUFFile } from '../src/model/gguf/reader.js';
import { ChatTemplate, ChatTemplateError, type ChatMessage } from '../src/model/chat-template.js';
import { bundledModel } from './paths.js';

const LLAMA2 =
  "{% if messages[0]['role'] == 'system' %}{% set loop_messages = messages[1:] %}{% set system_message = messages[0]['content'] %}" +
  "{% else %}{% set loop_messages = messages %}{% set system_message = false %}{% endif %}{% for message in loop_messages %}" +
  "{% if (message['role'] == 'user') != (loop.index0 % 2 == 0) %}{{ raise_exception('Conversation roles must alternate user/assistant/user/assistant/...') }}{% endif %}" +
  "{% if loop.index0 == 0 and system_message != false %}{% set content = '<<SYS>>\\n' + system_message + '\\n<</SYS>>\\n\\n' + message['content'] %}" +
  "{% else %}{% set content = message['content'] %}{% endif %}{% if message['role'] == 'user' %}{{ bos_token + '[INST] ' + content.strip() + ' [/INST]' }}" +
  "{% elif message['role'] == 'assistant' %}{{ ' '  + content.strip() + ' ' + eos_token }}{% endif %}{% endfor %}";

const CHATML =
  "{% for message in messages %}{{'<|im_start|>' + message['role'] + '\n' + message['content'] + '<|im_end|>' + '\n'}}{% endfor %}" +
  "{% if add_generation_prompt %}{{ '<|im_start|>assistant\n' }}{% endif %}";

const LLAMA3 =
  "{% set loop_messages = messages %}{% for message in loop_messages %}{% set content = '<|start_header_id|>' + message['role'] + " +
  "'<|end_header_id|>\n\n'+ message['content'] | trim + '<|eot_id|>' %}{% if loop.index0 == 0 %}{% set content = bos_token + content %}{% endif %}" +
  "{{ content }}{% endfor %}{% if add_generation_prompt %}{{ '<|start_header_id|>assistant<|end_header_id|>\n\n' }}{% endif %}";

const CONVERSATION: ChatMessage[] = [
  { role: 'system', content: 'You are helpful.' },
  { role: 'user', content: 'Hi' },
  { role: 'assistant', content: 'Hello!' },
  { role: 'user', content: 'How are you?' },
];

test('Llama-2 chat template', () => {
  const t = new ChatTemplate(LLAMA2, { bosToken: '<s>', eosToken: '</s>' });
  assert.equal(
    t.render(CONVERSATION),
    '<s>[INST] <<SYS>>\nYou are helpful.\n<</SYS>>\n\nHi [/INST] Hello! </s><s>[INST] How are you? [/INST]',
  );
});

test('ChatML template, with and without the generation prompt', () => {
  const t = new ChatTemplate(CHATML);
  const body =
    '<|im_start|>system\nYou are helpful.<|im_end|>\n<|im_start|>user\nHi<|im_end|>\n' +
    '<|im_start|>assistant\nHello!<|im_end|>\n<|im_start|>user\nHow are you?<|im_end|>\n';
  assert.equal(t.render(CONVERSATION), body + '<|im_start|>assistant\n');
  assert.equal(t.render(CONVERSATION, { addGenerationPrompt: false }), body);
});

test('Llama-3 chat template', () => {
  const t = new ChatTemplate(LLAMA3, { bosToken: '<|begin_of_text|>', eosToken: '<|eot_id|>' });
  assert.equal(
    t.render(CONVERSATION.slice(0, 2)),
    '<|begin_of_text|><|start_header_id|>system<|end_header_id|>\n\nYou are helpful.<|eot_id|>' +
      '<|start_header_id|>user<|end_header_id|>\n\nHi<|eot_id|><|start_header_id|>assistant<|end_header_id|>\n\n',
  );
});

test('fromGGUF reads tokenizer.chat_template and the BOS/EOS texts', () => {
  const meta = new Map<string, unknown>([
    ['tokenizer.chat_template', LLAMA2],
    ['tokenizer.ggml.tokens', ['<unk>', '<s>', '</s>']],
    ['tokenizer.ggml.bos_token_id', 1],
    ['tokenizer.ggml.eos_token_id', 2],
  ]);
  const t = ChatTemplate.fromGGUF(meta as never);
  assert.equal(t.isFallback, false);
  assert.equal(t.render([{ role: 'user', content: 'Hi' }, { role: 'assistant', content: 'Yo' }]), '<s>[INST] Hi [/INST] Yo </s>');
});

test('a model without a template (the bundled stories260K) gets the plain fallback format', () => {
  const file = GGUFFile.open(bundledModel);
  const t = ChatTemplate.fromGGUF(file);
  file.close();
  assert.equal(t.isFallback, true);
  assert.equal(
    t.render(CONVERSATION),
    'System: You are helpful.\n\nUser: Hi\n\nAssistant: Hello!\n\nUser: How are you?\n\nAssistant:',
  );
  assert.equal(t.render([{ role: 'user', content: 'Hi' }], { addGenerationPrompt: false }), 'User: Hi');
});

test('a template that does not parse fails when loaded, with a clear error', () => {
  assert.throws(() => new ChatTemplate('{% for message in messages %}{{ message.content }'), (e: unknown) =>
    e instanceof ChatTemplateError && /chat template does not parse/.test(e.message));
});

test('a template that raises or fails while rendering gives a clear error', () => {
  const t = new ChatTemplate(LLAMA2, { bosToken: '<s>', eosToken: '</s>' });
  assert.throws(() => t.render([{ role: 'assistant', content: 'first' }]), (e: unknown) =>
    e instanceof ChatTemplateError && /failed to render: .*roles must alternate/.test(e.message));
  assert.throws(() => new ChatTemplate('{{ messages[0].content.nosuchmethod() }}').render([{ role: 'user', content: 'x' }]), ChatTemplateError);
});
