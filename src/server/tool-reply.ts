// A finished chat reply read as tool calls, by how the request's tools shaped it.
import { CONVENTION_CALLS } from './tool-call-conventions.js';
import { parseToolCall } from './tool-call-json.js';
import type { ToolCallMode, ToolReply } from './tool-calls.js';

/** The reply's calls; undefined when it is plain text (no call, or one cut short). */
export function readToolReply(mode: ToolCallMode, text: string): ToolReply | undefined {
  if (mode !== 'forced') return CONVENTION_CALLS[mode].read(text);
  const call = parseToolCall(text);
  return call ? { content: null, calls: [call] } : undefined;
}
