// A tool call as JSON, both ways: the schema that constrains a call of one of the request's tools, and a
// call the model wrote read back as the API's ToolCall. Conventions name the arguments differently
// (Llama 3 writes "parameters") and want different ids (Mistral checks for 9 alphanumerics), so both
// are parameters here.
import { randomBytes, randomUUID } from 'node:crypto';
import type { RequestParams } from '../engine/engine-types.js';
import type { Tool, ToolCall } from './tool-calls.js';

/** The key a convention puts a call's arguments under. */
export type ArgumentsKey = 'arguments' | 'parameters';

/** The schema of one call of any of `tools`: {"name", <key>}, the arguments matching that tool's parameters. */
export function callSchema(tools: readonly Tool[], key: ArgumentsKey = 'arguments'): Record<string, unknown> {
  const call = (t: Tool) => ({
    type: 'object',
    additionalProperties: false,
    required: ['name', key],
    // $id makes the parameters their own schema resource, so their "#/$defs/..." refs resolve inside them.
    properties: { name: { const: t.function.name }, [key]: { $id: `vserve:tool:${t.function.name}`, ...(t.function.parameters ?? { type: 'object' }) } },
  });
  return tools.length === 1 ? call(tools[0]!) : { anyOf: tools.map(call) };
}

/** callSchema as a response format. */
export function callFormat(tools: readonly Tool[], key: ArgumentsKey = 'arguments'): NonNullable<RequestParams['responseFormat']> {
  return { type: 'json_schema', schema: callSchema(tools, key), strict: true };
}

/** An id in OpenAI's shape: "call_" and 24 hex digits. */
export function openAiCallId(): string {
  return `call_${randomUUID().replaceAll('-', '').slice(0, 24)}`;
}

const ALPHANUMERIC = 'ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789';

/** An id in Mistral's shape: 9 letters or digits. */
export function mistralCallId(): string {
  return Array.from(randomBytes(9), (b) => ALPHANUMERIC[b % ALPHANUMERIC.length]).join('');
}

/** A parsed value as a call ({"name": string, <key>: object}); undefined if it is not one. */
export function callFromValue(v: unknown, key: ArgumentsKey = 'arguments', newId: () => string = openAiCallId): ToolCall | undefined {
  if (typeof v !== 'object' || v === null || Array.isArray(v)) return undefined;
  const { name, [key]: args } = v as Record<string, unknown>;
  if (typeof name !== 'string' || typeof args !== 'object' || args === null || Array.isArray(args)) return undefined;
  return { id: newId(), type: 'function', function: { name, arguments: JSON.stringify(args) } };
}

/** A call's JSON text as a call; undefined if it is not one (a stop string cut it, say). */
export function parseToolCall(text: string, key: ArgumentsKey = 'arguments', newId: () => string = openAiCallId): ToolCall | undefined {
  try {
    return callFromValue(JSON.parse(text), key, newId);
  } catch {
    return undefined;
  }
}

/**
 * Where the JSON object or array that starts at `from` ends (the index after its closing bracket), by
 * its brackets outside strings; undefined when it does not end in `text`. Whether it is valid JSON is
 * for JSON.parse to say.
 */
export function jsonValueEnd(text: string, from: number): number | undefined {
  let depth = 0;
  let inString = false;
  for (let i = from; i < text.length; i++) {
    const c = text[i];
    if (inString) {
      if (c === '\\') i++;
      else if (c === '"') inString = false;
    } else if (c === '"') {
      inString = true;
    } else if (c === '{' || c === '[') {
      depth++;
    } else if (c === '}' || c === ']') {
      if (--depth === 0) return i + 1;
    }
  }
  return undefined;
}
