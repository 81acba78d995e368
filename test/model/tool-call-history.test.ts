// Earlier calls in a conversation reach the chat template as the API sent them, the way templates for
// tool use read them: an assistant message's tool_calls with the arguments as an object (so tojson
// prints them as the template lays out), a tool result's tool_call_id. A template that never reads
// tool_calls sees them as text in the content. The bodies go through the server's own schema and
// translation (chatInput), as a replica's and the router's requests do; the expected prompts are
// written out by hand from each fixture's format.
import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { test } from 'node:test';
import { ChatTemplate } from '../../src/model/chat-template.js';
import { templateMessages } from '../../src/engine/chat-message.js';
import { callsAsText, templateArguments, templateReadsToolCalls } from '../../src/model/tool-call-history.js';
import { chatInput, chatRequest, parseBody } from '../../src/server/schemas.js';
import { repoRoot } from '../paths.js';

const fixture = (name: string) => readFileSync(join(repoRoot, 'test', 'fixtures', 'chat-templates', `${name}.jinja`), 'utf8');

const TOOLS = [{ type: 'function', function: { name: 'get_weather', parameters: { type: 'object', properties: { city: { type: 'string' } } } } }];
const TOOLS_JSON = '{"type": "function", "function": {"name": "get_weather", "parameters": {"type": "object", "properties": {"city": {"type": "string"}}}}}';

function conversation(args: string) {
  return [
    { role: 'user', content: 'Weather?' },
    { role: 'assistant', content: null, tool_calls: [{ id: 'abcDEF123', type: 'function', function: { name: 'get_weather', arguments: args } }, { id: 'xyz987XYZ', type: 'function', function: { name: 'get_weather', arguments: '{}' } }] },
    { role: 'tool', tool_call_id: 'abcDEF123', content: 'Sunny' },
    { role: 'tool', tool_call_id: 'xyz987XYZ', content: 'Rain' },
  ];
}

function render(name: string, messages: unknown[], tokens: { bosToken?: string; eosToken?: string } = {}): string {
  const template = new ChatTemplate(fixture(name), tokens);
  return template.render(templateMessages(chatInput(parseBody(chatRequest, { messages, tools: TOOLS }))), { variables: { tools: TOOLS } });
}

test('Llama 3.x: each earlier call as {"name", "parameters"} with the arguments printed by tojson, "; " between, results in ipython turns', () => {
  assert.equal(render('llama-3-tools', conversation('{"city":"Oslo","days":[1,2]}'), { bosToken: '<|begin_of_text|>' }),
    '<|begin_of_text|><|start_header_id|>system<|end_header_id|>\n\nEnvironment: ipython\n<|eot_id|>' +
    '<|start_header_id|>user<|end_header_id|>\n\nYou can call these functions. To call one, reply with only {"name": <function name>, "parameters": <object of its arguments>}.\n\n' +
    `${TOOLS_JSON}\n\nWeather?<|eot_id|>` +
    '<|start_header_id|>assistant<|end_header_id|>\n\n{"name": "get_weather", "parameters": {"city": "Oslo", "days": [1, 2]}}; {"name": "get_weather", "parameters": {}}<|eot_id|>' +
    '<|start_header_id|>ipython<|end_header_id|>\n\nSunny<|eot_id|><|start_header_id|>ipython<|end_header_id|>\n\nRain<|eot_id|>' +
    '<|start_header_id|>assistant<|end_header_id|>\n\n');
});

test('Mistral: the calls with their ids after [TOOL_CALLS], each result with its call id; an id of the wrong shape is the template\'s error', () => {
  assert.equal(render('mistral-tools', conversation('{"city": "Oslo"}'), { bosToken: '<s>', eosToken: '</s>' }),
    `<s>[AVAILABLE_TOOLS] [${TOOLS_JSON}][/AVAILABLE_TOOLS][INST] Weather?[/INST]` +
    '[TOOL_CALLS] [{"name": "get_weather", "arguments": {"city": "Oslo"}, "id": "abcDEF123"}, {"name": "get_weather", "arguments": {}, "id": "xyz987XYZ"}]</s>' +
    '[TOOL_RESULTS] {"content": "Sunny", "call_id": "abcDEF123"}[/TOOL_RESULTS][TOOL_RESULTS] {"content": "Rain", "call_id": "xyz987XYZ"}[/TOOL_RESULTS]');
  const wrong = conversation('{}');
  (wrong[2] as { tool_call_id: string }).tool_call_id = 'call_1';
  assert.throws(() => render('mistral-tools', wrong), /9 letters or digits/);
});

test('a template that never reads tool_calls (the Hermes fixture) sees each call as a {"name", "arguments"} line in the content', () => {
  assert.equal(templateReadsToolCalls(fixture('hermes-tools')), false);
  assert.equal(render('hermes-tools', conversation('{"city": "Oslo"}').slice(0, 2)),
    `<|im_start|>system\nYou may call these functions:\n<tools>\n${TOOLS_JSON}\n</tools>\n` +
    'To call one, reply with <tool_call>\n{"name": <function name>, "arguments": <arguments object>}\n</tool_call>\n<|im_end|>\n' +
    '<|im_start|>user\nWeather?<|im_end|>\n' +
    '<|im_start|>assistant\n{"name": "get_weather", "arguments": {"city":"Oslo"}}\n{"name": "get_weather", "arguments": {}}<|im_end|>\n<|im_start|>assistant\n');
});

test('arguments that are not a JSON object reach the template as the client\'s text, and as that text when shown as text', () => {
  assert.deepEqual(templateArguments('{"a": 1}'), { a: 1 });
  assert.equal(templateArguments('not json'), 'not json');
  assert.equal(templateArguments('[1, 2]'), '[1, 2]');
  const [, assistant] = chatInput(parseBody(chatRequest, { messages: conversation('city=Oslo') }));
  assert.deepEqual(assistant!.tool_calls, [
    { id: 'abcDEF123', type: 'function', function: { name: 'get_weather', arguments: 'city=Oslo' } },
    { id: 'xyz987XYZ', type: 'function', function: { name: 'get_weather', arguments: {} } },
  ]);
  assert.equal(assistant!.content, '');
  assert.equal(callsAsText(assistant!.tool_calls as never), '{"name": "get_weather", "arguments": city=Oslo}\n{"name": "get_weather", "arguments": {}}');
  // Calls of another shape (an engine caller's own) are left as they are rather than half-read.
  const odd = [{ role: 'assistant', content: 'x', tool_calls: [{ call: 'f()' }] }];
  assert.equal(new ChatTemplate('{{ messages[0].content }}').render(odd), 'x');
  // The fallback format (no template) shows them as text too, after any content.
  assert.equal(new ChatTemplate(undefined).render(templateMessages(chatInput(parseBody(chatRequest, { messages: conversation('{"city": "Oslo"}').slice(0, 3) }))), { addGenerationPrompt: false }),
    'User: Weather?\n\nAssistant: {"name": "get_weather", "arguments": {"city":"Oslo"}}\n{"name": "get_weather", "arguments": {}}\n\nTool: Sunny');
});
