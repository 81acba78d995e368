// The tool-call conventions vserve can read from a chat template. A model calls tools in the text it
// was trained on, so "auto" tool choice only works where vserve knows that text: the Hermes convention
// (Hermes 2/3, Qwen2.5, Qwen3) renders the tools in the prompt and expects each call as
//
//     <tool_call>
//     {"name": "...", "arguments": {...}}
//     </tool_call>
//
// one block per call, possibly after some text.

export type ToolCallConvention = 'hermes';

/** The conventions recognised, for messages that say what is missing. */
export const KNOWN_TOOL_CALL_CONVENTIONS = ['Hermes-style <tool_call> tags (Hermes 2/3, Qwen2.5, Qwen3 templates)'] as const;

export const HERMES_OPEN = '<tool_call>';
export const HERMES_CLOSE = '</tool_call>';

/**
 * The convention a chat template uses, or undefined when it shows none: it must render the `tools`
 * variable (or the model never learns what it may call) and write the <tool_call> tag.
 */
export function toolCallConvention(templateSource: string | undefined): ToolCallConvention | undefined {
  if (templateSource === undefined) return undefined;
  return /\btools\b/.test(templateSource) && templateSource.includes(HERMES_OPEN) ? 'hermes' : undefined;
}
