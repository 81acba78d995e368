// Reading a reply in the Llama 3.x JSON tool-call convention (model/tool-call-convention.ts): the reply
// begins with the call, {"name", "parameters"}, and Llama 3.2 may follow it with more, each after "; ".
// Text after the last call (models rarely write any) is kept as content.
import { jsonValueEnd, parseToolCall } from './tool-call-json.js';
import type { ToolReply } from './tool-calls.js';

/**
 * The reply's calls and content; undefined when it does not begin with a call, or when a call is not
 * whole (cut by max_tokens or a stop string): then the reply is plain text, so nothing is lost.
 */
export function parseLlamaJsonReply(text: string): ToolReply | undefined {
  let at = text.length - text.trimStart().length;
  if (text[at] !== '{') return undefined;
  const calls: ToolReply['calls'] = [];
  for (;;) {
    const end = jsonValueEnd(text, at);
    if (end === undefined) return undefined;
    const call = parseToolCall(text.slice(at, end), 'parameters');
    if (!call) return undefined;
    calls.push(call);
    const separator = /^\s*;\s*(?=\{)/.exec(text.slice(end));
    if (!separator) {
      const rest = text.slice(end);
      return { content: rest.trim() === '' ? null : rest, calls };
    }
    at = end + separator[0].length;
  }
}
