// A finished chat reply read as tool calls, by how the request's tools shaped it.
import { parseHermesReply } from './hermes-calls.js';
import { parseToolCall, type ToolCallMode, type ToolReply } from './tool-calls.js';

/** The reply's calls; undefined when it is plain text (no call, or one cut short). */
export function readToolReply(mode: ToolCallMode, text: string): ToolReply | undefined {
  if (mode === 'hermes') return parseHermesReply(text);
  const call = parseToolCall(text);
  return call ? { content: null, calls: [call] } : undefined;
}
