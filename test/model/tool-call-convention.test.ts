// Which chat templates show the Hermes tool-call convention: those that render the tools and write the
// <tool_call> tag. The family fixtures without tool support show none.
import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { test } from 'node:test';
import { toolCallConvention } from '../../src/model/tool-call-convention.js';
import { CHAT_TEMPLATE_FAMILIES, chatTemplateFixture } from '../chat-template-fixtures.js';
import { repoRoot } from '../paths.js';

test('a template that renders tools and writes <tool_call> uses the Hermes convention; others, and no template, none', () => {
  const hermes = readFileSync(join(repoRoot, 'test', 'fixtures', 'chat-templates', 'hermes-tools.jinja'), 'utf8');
  assert.equal(toolCallConvention(hermes), 'hermes');
  for (const family of CHAT_TEMPLATE_FAMILIES) assert.equal(toolCallConvention(chatTemplateFixture(family).template), undefined, family);
  assert.equal(toolCallConvention(undefined), undefined);
  // The tag alone (say, in a system prompt) is not enough: the model must be shown the tools.
  assert.equal(toolCallConvention("{{- 'Answer in <tool_call> tags' -}}{%- for m in messages -%}{{ m.content }}{%- endfor -%}"), undefined);
});
