// Earlier tool calls in a conversation, as a chat template sees them. Templates written for tool use read
// an assistant message's `tool_calls` ({id, type, function: {name, arguments}}, the arguments an object
// they print with tojson) and a tool result's `tool_call_id`, so messages reach them that way. A
// template that never mentions tool_calls would drop the calls silently; it gets them as text in the
// message's content instead, one {"name", "arguments"} line per call, so the model still sees them.

/** A call in an assistant message, as the template reads it: arguments parsed, or the client's text when not JSON. */
export interface TemplateToolCall {
  id: string;
  type: 'function';
  function: { name: string; arguments: Record<string, unknown> | string };
}

/** Whether a template reads assistant messages' calls itself. */
export function templateReadsToolCalls(source: string | undefined): boolean {
  return source !== undefined && source.includes('tool_calls');
}

/** A call's arguments for the template: the object its JSON text holds, or the text when it holds none. */
export function templateArguments(text: string): Record<string, unknown> | string {
  try {
    const v: unknown = JSON.parse(text);
    return typeof v === 'object' && v !== null && !Array.isArray(v) ? (v as Record<string, unknown>) : text;
  } catch {
    return text;
  }
}

/** The calls as text, one {"name", "arguments"} per line. */
export function callsAsText(calls: readonly TemplateToolCall[]): string {
  return calls
    .map((c) => {
      const args = typeof c.function.arguments === 'string' ? c.function.arguments : JSON.stringify(c.function.arguments);
      return `{"name": ${JSON.stringify(c.function.name)}, "arguments": ${args}}`;
    })
    .join('\n');
}

/**
 * Messages for a template that does not read `tool_calls`: each message's calls appended to its content
 * as text. Calls of another shape (an engine caller's own) are left to the template as they are.
 */
export function callsInContent<M extends { content: string; tool_calls?: unknown }>(messages: readonly M[]): M[] {
  return messages.map((m) => {
    const calls = Array.isArray(m.tool_calls) && m.tool_calls.length > 0 && m.tool_calls.every(isCall) ? callsAsText(m.tool_calls) : '';
    if (!calls) return m;
    const { tool_calls: _, ...rest } = m;
    return { ...rest, content: [m.content, calls].filter(Boolean).join('\n') } as unknown as M;
  });
}

function isCall(c: unknown): c is TemplateToolCall {
  const f = (c as { function?: { name?: unknown; arguments?: unknown } } | null)?.function;
  return typeof f?.name === 'string' && (typeof f.arguments === 'string' || (typeof f.arguments === 'object' && f.arguments !== null));
}
