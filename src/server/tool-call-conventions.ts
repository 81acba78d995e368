// Each tool-call convention vserve knows (model/tool-call-convention.ts), as the server uses it with
// tool_choice "auto": the triggered format that lets the model write freely and constrains each call it
// opens, and the reader that turns the finished reply into content and calls.
import type { TriggeredFormat } from '../constrained/triggered-constraint.js';
import { HERMES_CLOSE, HERMES_OPEN, MISTRAL_TOOL_CALLS, type ToolCallConvention } from '../model/tool-call-convention.js';
import { parseHermesReply } from './hermes-calls.js';
import { parseLlamaJsonReply } from './llama-json-calls.js';
import { parseMistralReply } from './mistral-calls.js';
import { callFormat, callSchema } from './tool-call-json.js';
import type { Tool, ToolReply } from './tool-calls.js';

export interface ConventionCalls {
  /** The engine's constraint for a reply that may call `tools`. */
  format(tools: readonly Tool[]): TriggeredFormat;
  /** The finished reply's content and calls; undefined when it holds no whole call (it is plain text). */
  read(text: string): ToolReply | undefined;
}

export const CONVENTION_CALLS: Record<ToolCallConvention, ConventionCalls> = {
  hermes: {
    format: (tools) => ({ trigger: HERMES_OPEN, close: HERMES_CLOSE, format: callFormat(tools) }),
    read: parseHermesReply,
  },
  // The reply's first non-blank character opens the call, and is its own first byte. Only blanks, or a
  // call and "; ", come before a call; the document's end ends it (the turn's end token follows).
  'llama-json': {
    format: (tools) => ({ trigger: '{', close: '', format: callFormat(tools, 'parameters'), gap: ' \t\r\n;', triggerInDocument: true }),
    read: parseLlamaJsonReply,
  },
  mistral: {
    format: (tools) => ({ trigger: MISTRAL_TOOL_CALLS, close: '', format: { type: 'json_schema', schema: { type: 'array', minItems: 1, items: callSchema(tools) }, strict: true } }),
    read: parseMistralReply,
  },
};
