// Tool calls for the chat API, where they can be honest. With tool_choice "required" or a named
// function, the reply is forced to be one call by constrained decoding ({"name", "arguments"} with the
// function's parameters as the arguments' schema). With "auto" the model chooses between text and calls,
// which vserve can only read in a convention it knows from the chat template (model/tool-call-convention.ts):
// there the calls it opens are constrained the same way, from where they open (tool-call-conventions.ts).
// Other templates get "auto" refused rather than quietly never calling. Either way the calls come back as message.tool_calls.
import { z } from 'zod';
import type { RequestParams } from '../engine/engine-types.js';
import { KNOWN_TOOL_CALL_CONVENTIONS, type ToolCallConvention } from '../model/tool-call-convention.js';
import { invalidField } from './errors.js';
import { CONVENTION_CALLS } from './tool-call-conventions.js';
import { callFormat } from './tool-call-json.js';

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

export type Tool = z.infer<typeof toolSchema>;
type ToolChoice = z.infer<typeof toolChoiceSchema>;

export interface ToolCall {
  id: string;
  type: 'function';
  function: { name: string; arguments: string };
}

/** How a chat request's reply is shaped by its tools: forced to one call, or free to call in the model's convention. */
export type ToolCallMode = 'forced' | ToolCallConvention;

/** A reply read as tool calls: the calls, and the text outside them (null when none). */
export interface ToolReply {
  content: string | null;
  calls: ToolCall[];
}

/**
 * The constraint for a chat request's tools, and how its reply is read; undefined when the reply is
 * plain text (no tools, or "none"). `convention` is the model's, from its chat template.
 */
export function toolCallPlan(
  tools: readonly Tool[] | null | undefined,
  choice: ToolChoice | null | undefined,
  convention: ToolCallConvention | undefined,
): { params: Pick<RequestParams, 'responseFormat' | 'triggeredFormat'>; mode: ToolCallMode } | undefined {
  if (!tools || tools.length === 0 || choice === 'none') return undefined;
  if (choice === undefined || choice === null || choice === 'auto') {
    if (convention === undefined) {
      throw invalidField('tool_choice', `tool_choice "auto" (the default with tools) needs a model whose chat template shows how it calls tools, and this one's shows no convention vserve knows (known: ${KNOWN_TOOL_CALL_CONVENTIONS.join('; ')}); send "required" or name a function to have the reply be a call`, 'unsupported_parameter');
    }
    return { params: { triggeredFormat: CONVENTION_CALLS[convention].format(tools) }, mode: convention };
  }
  const allowed = choice === 'required' ? tools : tools.filter((t) => t.function.name === choice.function.name);
  if (allowed.length === 0) throw invalidField('tool_choice', `tool_choice names "${(choice as { function: { name: string } }).function.name}", which is not among the tools`);
  return { params: { responseFormat: callFormat(allowed) }, mode: 'forced' };
}
