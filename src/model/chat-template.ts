// Chat templates: turns a list of chat messages into the prompt text a model was trained on, by
// rendering the Jinja template a GGUF carries in tokenizer.chat_template (with @huggingface/jinja, the
// engine Hugging Face's own JS libraries use). The template sees `messages`, `add_generation_prompt`,
// `bos_token` and `eos_token` (as texts), as it does in transformers.
//
// A model without a template (the bundled stories260K has none) gets a plain fallback format:
//
//     System: <content>
//
//     User: <content>
//
//     Assistant: <content>
//
//     Assistant:
//
// one "<Role>: <content>" block per message, the role capitalised, blocks separated by a blank line;
// with add_generation_prompt a final "Assistant:" block (no trailing space: the model's first token
// brings its own leading space). No BOS text is written; encode with addSpecial to add it.
import { Template } from '@huggingface/jinja';
import { GGUFFile } from './gguf/reader.js';
import type { GGUFMetadata } from './tokenizer/index.js';
import { callsInContent, templateReadsToolCalls } from './tool-call-history.js';

export interface ChatMessage {
  role: string;
  content: string;
  /** Other fields (name, tool calls, …) are passed through to the template as they are. */
  [field: string]: unknown;
}

export interface ChatRenderOptions {
  /** End with the opening of an assistant turn, so the model writes the reply. Default true. */
  addGenerationPrompt?: boolean;
  /** More variables for the template (e.g. tools, date_string). */
  variables?: Record<string, unknown>;
}

export class ChatTemplateError extends Error {
  constructor(message: string) {
    super(message);
    this.name = 'ChatTemplateError';
  }
}

export class ChatTemplate {
  private readonly compiled: Template | undefined;
  /** Whether the template reads assistant messages' tool_calls; if not, they are shown to it as text (tool-call-history.ts). */
  private readonly readsToolCalls: boolean;

  /**
   * `source` is the Jinja text, or undefined for the fallback format. A template that does not parse
   * throws ChatTemplateError here rather than on first use.
   */
  constructor(
    readonly source: string | undefined,
    readonly specialTexts: { bosToken?: string; eosToken?: string } = {},
  ) {
    this.readsToolCalls = templateReadsToolCalls(source);
    if (source === undefined) return;
    try {
      this.compiled = new Template(source);
    } catch (e) {
      throw new ChatTemplateError(`the chat template does not parse: ${(e as Error).message}`);
    }
  }

  /** The template of a GGUF file (tokenizer.chat_template), with its BOS/EOS texts; the fallback when it has none. */
  static fromGGUF(source: GGUFFile | GGUFMetadata): ChatTemplate {
    const meta = source instanceof GGUFFile ? source.metadata : source;
    const template = meta.get('tokenizer.chat_template');
    if (template !== undefined && typeof template !== 'string') {
      throw new ChatTemplateError('tokenizer.chat_template is not a string');
    }
    const tokens = meta.get('tokenizer.ggml.tokens');
    const tokenText = (key: string): string | undefined => {
      const id = meta.get(key);
      return Array.isArray(tokens) && typeof id === 'number' ? (tokens[id] as string | undefined) : undefined;
    };
    return new ChatTemplate(template, {
      bosToken: tokenText('tokenizer.ggml.bos_token_id'),
      eosToken: tokenText('tokenizer.ggml.eos_token_id'),
    });
  }

  get isFallback(): boolean {
    return this.compiled === undefined;
  }

  render(messages: readonly ChatMessage[], opts: ChatRenderOptions = {}): string {
    const addGenerationPrompt = opts.addGenerationPrompt ?? true;
    if (!this.readsToolCalls) messages = callsInContent(messages);
    if (this.compiled === undefined) return renderFallbackChat(messages, addGenerationPrompt);
    try {
      return this.compiled.render({
        ...opts.variables,
        messages,
        add_generation_prompt: addGenerationPrompt,
        bos_token: this.specialTexts.bosToken ?? '',
        eos_token: this.specialTexts.eosToken ?? '',
      });
    } catch (e) {
      throw new ChatTemplateError(`the chat template failed to render: ${(e as Error).message}`);
    }
  }
}

/** The fallback format described at the top of this file. */
export function renderFallbackChat(messages: readonly ChatMessage[], addGenerationPrompt: boolean): string {
  const blocks = messages.map((m) => `${capitalise(m.role)}: ${m.content}`);
  if (addGenerationPrompt) blocks.push('Assistant:');
  return blocks.join('\n\n');
}

function capitalise(role: string): string {
  return role.charAt(0).toUpperCase() + role.slice(1);
}
