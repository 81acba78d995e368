// Reading a reply in the Mistral tool-call convention (model/tool-call-convention.ts): [TOOL_CALLS]
// followed by a JSON array of {"name", "arguments"}. Text before it is content, as is text after the
// array unless it is blank. Ids are Mistral's 9 alphanumerics, so the client's tool results pass the
// template's check when they come back.
import { MISTRAL_TOOL_CALLS } from '../model/tool-call-convention.js';
import { callFromValue, jsonValueEnd, mistralCallId } from './tool-call-json.js';
import type { ToolReply } from './tool-calls.js';

/** The reply's calls and content; undefined when it holds no [TOOL_CALLS] array of whole calls. */
export function parseMistralReply(text: string): ToolReply | undefined {
  const at = text.indexOf(MISTRAL_TOOL_CALLS);
  if (at < 0) return undefined;
  const after = text.slice(at + MISTRAL_TOOL_CALLS.length);
  const from = after.length - after.trimStart().length;
  if (after[from] !== '[') return undefined;
  const end = jsonValueEnd(after, from);
  if (end === undefined) return undefined;
  let items: unknown;
  try {
    items = JSON.parse(after.slice(from, end));
  } catch {
    return undefined;
  }
  if (!Array.isArray(items) || items.length === 0) return undefined;
  const calls = items.map((item) => callFromValue(item, 'arguments', mistralCallId));
  if (calls.some((c) => c === undefined)) return undefined;
  const rest = after.slice(end);
  const content = text.slice(0, at) + (rest.trim() === '' ? '' : rest);
  return { content: content.trim() === '' ? null : content, calls: calls as ToolReply['calls'] };
}
