// Tool calls for the chat API, where they can be honest: with tool_choice "required" or a named
// function, the reply is forced to be one call by constrained decoding ({"name", "arguments"} with
// the function's parameters as the arguments' schema), and comes back as message.tool_calls. "auto"
// needs the model to choose between text and a call in a format of its own, which vserve does not
// know for any model, so it is refused rather than quietly never calling.
import { randomUUID } from 'node:crypto';
import { z } from 'zod';
import type { RequestParams } from '../engine/engine-types.js';
import { invalidField } from './errors.js';

export const toolSchema = z.strictObject({
  type: z.literal('function'),
  function: z.strictObject({
    name: z.string().regex(/^[A-Za-z0-9_-]{1,64}$/, { error: 'must be 1-64 letters, digits, _ or -' }),
    description: z.string().nullish(),
    parameters: z.record(z.string(), z.unknown()).nullish(),
    strict: z.boolean().nullish(),
  }),
});

export const toolChoiceSchema = z.union([
  z.enum(['none', 'auto', 'required']),
  z.strictObject({ type: z.literal('function'), function: z.strictObject({ name: z.string() }) }),
], { error: 'must be "none", "auto", "required" or {"type": "function", "function": {"name": ...}}' });

/** A call in an assistant message of the history. */
export const toolCallSchema = z.strictObject({
  id: z.string(),
  type: z.literal('function'),
  function: z.strictObject({ name: z.string(), arguments: z.string() }),
});

type Tool = z.infer<typeof toolSchema>;
type ToolChoice = z.infer<typeof toolChoiceSchema>;

export interface ToolCall {
  id: string;
  type: 'function';
  function: { name: string; arguments: string };
}

/**
 * The response_format that forces one call of the tools `choice` allows, or undefined when the reply
 * is plain text (no tools, or "none").
 */
export function toolCallFormat(tools: readonly Tool[] | null | undefined, choice: ToolChoice | null | undefined): RequestParams['responseFormat'] {
  if (!tools || tools.length === 0 || choice === 'none') return undefined;
  if (choice === undefined || choice === null || choice === 'auto') {
    throw invalidField('tool_choice', `tool_choice "auto" (the default with tools) is not supported: vserve knows no model's own tool-call format; send "required" or name a function to have the reply be a call`, 'unsupported_parameter');
  }
  const allowed = choice === 'required' ? tools : tools.filter((t) => t.function.name === choice.function.name);
  if (allowed.length === 0) throw invalidField('tool_choice', `tool_choice names "${(choice as { function: { name: string } }).function.name}", which is not among the tools`);
  const call = (t: Tool) => ({
    type: 'object',
    additionalProperties: false,
    required: ['name', 'arguments'],
    // $id makes the parameters their own schema resource, so their "#/$defs/..." refs resolve inside them.
    properties: { name: { const: t.function.name }, arguments: { $id: `vserve:tool:${t.function.name}`, ...(t.function.parameters ?? { type: 'object' }) } },
  });
  return { type: 'json_schema', schema: allowed.length === 1 ? call(allowed[0]!) : { anyOf: allowed.map(call) }, strict: true };
}

/** The forced reply's text as a call; undefined if it is not one (a stop string cut it, say). */
export function parseToolCall(text: string): ToolCall | undefined {
  try {
    const v = JSON.parse(text) as { name?: unknown; arguments?: unknown };
    if (typeof v.name !== 'string' || typeof v.arguments !== 'object') return undefined;
    return { id: `call_${randomUUID().replaceAll('-', '').slice(0, 24)}`, type: 'function', function: { name: v.name, arguments: JSON.stringify(v.arguments) } };
  } catch {
    return undefined;
  }
}

/** An assistant message's calls as text for the chat template (models without a tool format see them so). */
export function callsAsText(calls: readonly ToolCall[]): string {
  return calls.map((c) => `{"name": ${JSON.stringify(c.function.name)}, "arguments": ${c.function.arguments}}`).join('\n');
}
