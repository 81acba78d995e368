// A request's input as prompt token ids, made on the caller's thread before the request is queued, so
// the engine's step loop never spends a running stream's time on a tokenizer. A prompt that cannot
// fit the context is refused as early as possible:
//  - by size, without tokenizing: every token stands for at most `maxTokenBytes` bytes of text (the
//    longest piece in the vocabulary; a byte-fallback or unknown token stands for fewer), so a text of
//    B bytes has at least ceil(B / maxTokenBytes) tokens whatever the merges do;
//  - otherwise by tokenizing with a stop once the context is exceeded (see EncodeOptions.stopAfter).
// Size alone can only prove "too long", never "fits": a text under the bound is tokenized.
import { ChatTemplateError, type ChatTemplate } from '../model/chat-template.js';
import { TokenizerError } from '../model/tokenizer/errors.js';
import type { Tokenizer } from '../model/tokenizer/tokenizer.js';
import { ContextLengthError } from './completion.js';
import { RequestFaultError } from './error-kind.js';
import type { ChatMessage, EngineInput } from './engine-types.js';

/** The longest text, in UTF-8 bytes, any one token of the vocabulary stands for (at least 4: one character). */
export function maxTokenBytes(tokenizer: Tokenizer): number {
  let max = 4;
  for (let id = 0; id < tokenizer.vocabSize; id++) max = Math.max(max, tokenizer.tokenToPiece(id).length);
  return max;
}

/**
 * Chat messages to prompt tokens: the template's text with control-token texts parsed as tokens, and
 * BOS added unless the template already wrote it.
 */
export function renderChat(template: ChatTemplate, tokenizer: Tokenizer, messages: readonly ChatMessage[], stopAfter?: number): number[] {
  const ids = tokenizer.encode(template.render(messages), { addSpecial: true, parseSpecial: true, stopAfter });
  return tokenizer.bos !== undefined && ids[0] === tokenizer.bos && ids[1] === tokenizer.bos ? ids.slice(1) : ids;
}

/**
 * A raw text prompt (/v1/completions) may spell control tokens ("<|im_start|>user..."), and they are
 * read as those tokens, as llama-server does (it tokenizes completion prompts with parse_special).
 */
export const RAW_PROMPTS_PARSE_SPECIAL = true;

/** The longest prompt a bounded request (a decode-time KV policy) may send: a guard on tokenizing, not a KV limit. */
export const BOUNDED_PROMPT_TOKENS = 1 << 20;

export class PromptEncoder {
  readonly maxTokenBytes: number;

  constructor(
    private readonly tokenizer: Tokenizer,
    private readonly template: ChatTemplate,
    /** Tokens per sequence: a prompt needs at most context - 1 (one token must be generated). */
    private readonly context: number,
  ) {
    this.maxTokenBytes = maxTokenBytes(tokenizer);
  }

  /**
   * The prompt's token ids; throws ContextLengthError or another RequestFaultError instead. `bounded`:
   * the request's KV policy keeps it within the context, so its prompt may be longer (up to a sanity cap).
   */
  encode(input: EngineInput, bounded = false): readonly number[] {
    const limit = bounded ? BOUNDED_PROMPT_TOKENS : this.context;
    return this.encodeWithin(input, limit);
  }

  private encodeWithin(input: EngineInput, limit: number): readonly number[] {
    if (typeof input === 'string') {
      const encode = (stop: number) => this.tokenizer.encode(input, { addSpecial: true, parseSpecial: RAW_PROMPTS_PARSE_SPECIAL, stopAfter: stop });
      return this.checked(this.encodeText(input, limit, encode), limit, 'at least ');
    }
    if (!Array.isArray(input)) throw new RequestFaultError('input must be a string, an array of token ids, or an array of chat messages', 'invalid_type', 'prompt');
    // Token ids: the worker checks them against the vocabulary; only their number is judged here.
    if (input.every((t) => typeof t === 'number')) return this.checked(input as readonly number[], limit, '');
    const messages = input as readonly ChatMessage[];
    if (!messages.every((m) => typeof m === 'object' && m !== null && typeof m.role === 'string' && typeof m.content === 'string')) {
      throw new RequestFaultError('chat messages must each be { role: string, content: string }', 'invalid_type', 'prompt');
    }
    const text = promptFault(() => this.template.render(messages));
    return this.checked(this.encodeText(text, limit, (stop) => renderChat(this.template, this.tokenizer, messages, stop)), limit, 'at least ');
  }

  /** Refuses `text` by its size when that proves it too long, else tokenizes it with the early stop. */
  private encodeText(text: string, limit: number, tokenize: (stopAfter: number) => number[]): number[] {
    const bytes = Buffer.byteLength(text, 'utf8');
    const atLeast = Math.ceil(bytes / this.maxTokenBytes);
    if (atLeast >= limit) {
      throw new ContextLengthError(
        `the prompt has at least ${atLeast} tokens (${bytes} bytes; no token of this vocabulary stands for more than ` +
          `${this.maxTokenBytes}); ${this.room(limit)}`,
      );
    }
    return promptFault(() => tokenize(limit - 1));
  }

  /** `atLeast` is 'at least ' when tokenizing stopped early, so the count is a lower bound. */
  private checked(ids: readonly number[], limit: number, atLeast: string): readonly number[] {
    if (ids.length >= limit) throw new ContextLengthError(`the prompt has ${atLeast}${ids.length} tokens; ${this.room(limit)}`);
    return ids;
  }

  private room(limit: number): string {
    return limit === this.context
      ? `the context holds ${this.context} (prompt plus at least one generated token)`
      : `a prompt kept within the context by eviction may have at most ${limit - 1}`;
  }
}

/** A tokenizer or template failure on this request's text (a template that raises on the roles, say) is the request's fault. */
function promptFault<T>(run: () => T): T {
  try {
    return run();
  } catch (e) {
    if (e instanceof ChatTemplateError || e instanceof TokenizerError) throw new RequestFaultError(e.message, 'invalid_prompt', 'prompt');
    throw e;
  }
}
