// Reading a reply in the Hermes tool-call convention (model/tool-call-convention.ts): each call is a
// <tool_call> block holding {"name", "arguments"}; the text outside the blocks is the message content
// (the text before the first, and any after it that is more than blank lines).
import { HERMES_CLOSE, HERMES_OPEN } from '../model/tool-call-convention.js';
import { parseToolCall } from './tool-call-json.js';
import type { ToolReply } from './tool-calls.js';

/**
 * The reply's calls and content; undefined when it holds no call, or a block that is not a whole call
 * (cut by max_tokens or a stop string): then the reply is plain text, so nothing the model wrote is lost.
 */
export function parseHermesReply(text: string): ToolReply | undefined {
  const first = text.indexOf(HERMES_OPEN);
  if (first < 0) return undefined;
  const calls: ToolReply['calls'] = [];
  const before = text.slice(0, first);
  let after = '';
  let at = first;
  while (at >= 0) {
    const end = text.indexOf(HERMES_CLOSE, at + HERMES_OPEN.length);
    if (end < 0) return undefined;
    const call = parseToolCall(text.slice(at + HERMES_OPEN.length, end));
    if (!call) return undefined;
    calls.push(call);
    const next = text.indexOf(HERMES_OPEN, end + HERMES_CLOSE.length);
    after += text.slice(end + HERMES_CLOSE.length, next < 0 ? undefined : next);
    at = next;
  }
  // Blank lines between and after blocks are layout, not content.
  const content = after.trim() === '' ? before : before + after;
  return { content: content.trim() === '' ? null : content, calls };
}
