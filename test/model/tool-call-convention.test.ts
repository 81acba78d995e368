// Which chat templates show a tool-call convention vserve knows: those that render the tools and write
// the convention's marks (<tool_call>; Llama 3's headers and the {"name", "parameters"} reply format;
// [AVAILABLE_TOOLS] and [TOOL_CALLS]). The family fixtures without tool support show none.
import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { test } from 'node:test';
import { toolCallConvention } from '../../src/model/tool-call-convention.js';
import { CHAT_TEMPLATE_FAMILIES, chatTemplateFixture } from '../chat-template-fixtures.js';
import { repoRoot } from '../paths.js';

const fixture = (name: string) => readFileSync(join(repoRoot, 'test', 'fixtures', 'chat-templates', `${name}.jinja`), 'utf8');

test('a template that renders tools and writes <tool_call> uses the Hermes convention; others, and no template, none', () => {
  assert.equal(toolCallConvention(fixture('hermes-tools')), 'hermes');
  for (const family of CHAT_TEMPLATE_FAMILIES) assert.equal(toolCallConvention(chatTemplateFixture(family).template), undefined, family);
  assert.equal(toolCallConvention(undefined), undefined);
  // The tag alone (say, in a system prompt) is not enough: the model must be shown the tools.
  assert.equal(toolCallConvention("{{- 'Answer in <tool_call> tags' -}}{%- for m in messages -%}{{ m.content }}{%- endfor -%}"), undefined);
});

test('Llama 3.x JSON: the headers, the tools and the {"name", "parameters"} reply format; the plain Llama 3 template, which lists tools without a format, shows none', () => {
  assert.equal(toolCallConvention(fixture('llama-3-tools')), 'llama-json');
  assert.equal(toolCallConvention(chatTemplateFixture('llama-3').template), undefined);
  // The reply format without Llama 3's headers is some other model's.
  assert.equal(toolCallConvention(fixture('llama-3-tools').replaceAll('<|start_header_id|>', '<|im_start|>')), undefined);
});

test('Mistral: [AVAILABLE_TOOLS] and [TOOL_CALLS] with the tools rendered; either mark alone, or the v11+ [ARGS] form, is not enough', () => {
  const mistral = fixture('mistral-tools');
  assert.equal(toolCallConvention(mistral), 'mistral');
  assert.equal(toolCallConvention(mistral.replaceAll('[TOOL_CALLS]', '[CALLS]')), undefined);
  assert.equal(toolCallConvention(mistral.replaceAll('[AVAILABLE_TOOLS]', '[TOOLS]')), undefined);
  // The v11+ form ([TOOL_CALLS]name[ARGS]{...}) is another format: not read as this one.
  assert.equal(toolCallConvention(mistral.replace("'[TOOL_CALLS] ['", "'[TOOL_CALLS]' + call.function.name + '[ARGS]'")), undefined);
});
