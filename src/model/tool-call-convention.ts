// The tool-call conventions vserve can read from a chat template. A model calls tools in the text it
// was trained on, so "auto" tool choice only works where vserve knows that text:
//  - Hermes (Hermes 2/3, Qwen2.5, Qwen3): one block per call, possibly after some text,
//        <tool_call>
//        {"name": "...", "arguments": {...}}
//        </tool_call>
//  - Llama 3.x JSON (Llama 3.1, 3.2, 3.3 instruct): the reply itself is the call, a JSON object
//        {"name": "...", "parameters": {...}}
//    ended by the end of the turn; Llama 3.2 may write several, separated by "; ". (Builtin tools,
//    written after <|python_tag|>, are not read.)
//  - Mistral (v3 style, the [AVAILABLE_TOOLS] templates): a control token, then a JSON array of calls,
//        [TOOL_CALLS] [{"name": "...", "arguments": {...}}, ...]
//    with 9-character alphanumeric call ids, which these templates check on tool results. Newer
//    templates (v11+) whose calls are [TOOL_CALLS]name[ARGS]{...} are a different format, not read.
// Each is recognised by what the template must show for the model to call at all: it renders the
// `tools` variable, and it writes the convention's own marks (below).

export type ToolCallConvention = 'hermes' | 'llama-json' | 'mistral';

/** The conventions recognised, for messages that say what is missing. */
export const KNOWN_TOOL_CALL_CONVENTIONS = [
  'Hermes-style <tool_call> tags (Hermes 2/3, Qwen2.5, Qwen3 templates)',
  'Llama 3.x JSON calls {"name", "parameters"} (Llama 3.1/3.2/3.3 templates)',
  'Mistral [TOOL_CALLS] arrays ([AVAILABLE_TOOLS] templates)',
] as const;

export const HERMES_OPEN = '<tool_call>';
export const HERMES_CLOSE = '</tool_call>';
export const MISTRAL_TOOL_CALLS = '[TOOL_CALLS]';
export const MISTRAL_AVAILABLE_TOOLS = '[AVAILABLE_TOOLS]';
/** The v11+ form's mark between a call's name and its arguments. */
const MISTRAL_ARGS = '[ARGS]';
/** Llama 3's turn header; its templates tell the model the reply format as {"name": ..., "parameters": ...}. */
const LLAMA_HEADER = '<|start_header_id|>';
const LLAMA_REPLY_FORMAT = /\{"name":[^}]{0,60}"parameters"/;

/**
 * The convention a chat template uses, or undefined when it shows none: it must render the `tools`
 * variable (or the model never learns what it may call) and write the convention's marks: the
 * <tool_call> tag (Hermes); Llama 3's turn headers and the {"name", "parameters"} reply format it asks
 * for (Llama 3.x); or both [AVAILABLE_TOOLS] and [TOOL_CALLS], without the v11+ [ARGS] (Mistral).
 */
export function toolCallConvention(templateSource: string | undefined): ToolCallConvention | undefined {
  if (templateSource === undefined || !/\btools\b/.test(templateSource)) return undefined;
  if (templateSource.includes(HERMES_OPEN)) return 'hermes';
  if (templateSource.includes(MISTRAL_AVAILABLE_TOOLS) && templateSource.includes(MISTRAL_TOOL_CALLS)) {
    return templateSource.includes(MISTRAL_ARGS) ? undefined : 'mistral';
  }
  if (templateSource.includes(LLAMA_HEADER) && LLAMA_REPLY_FORMAT.test(templateSource)) return 'llama-json';
  return undefined;
}
