// A request's input as prompt token ids, made on the caller's thread before the request is queued, so
// the engine's step loop never spends a running stream's time on a tokenizer. A prompt that cannot
// fit the context is refused as early as possible:
//  - by size, without tokenizing: every token stands for at most `maxTokenBytes` bytes of text (the
//    longest piece in the vocabulary; a byte-fallback or unknown token stands for fewer), so a text of
//    B bytes has at least ceil(B / maxTokenBytes) tokens whatever the merges do;
//  - otherwise by tokenizing with a stop once the context is exceeded (see EncodeOptions.stopAfter).
// Size alone can only prove "too long", never "fits": a text under the bound is tokenized.
// A prompt that marks documents is tokenized piece by piece (prompt-documents.ts) and judged as a whole.
import { ChatTemplateError, type ChatTemplate } from '../model/chat-template.js';
import { TokenizerError } from '../model/tokenizer/errors.js';
import type { Tokenizer } from '../model/tokenizer/tokenizer.js';
import { ContextLengthError, type RequestParams } from './completion.js';
import { RequestFaultError } from './error-kind.js';
import type { EngineInput } from './engine-types.js';
import { checkChatMessages, templateMessages, type ChatMessage } from './chat-message.js';
import { blendRequested, DEFAULT_BLEND_SEPARATOR, markedChatPieces, separatedPieces, type PromptPiece } from './prompt-documents.js';

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
export function renderChat(template: ChatTemplate, tokenizer: Tokenizer, messages: readonly ChatMessage[], stopAfter?: number, variables?: Record<string, unknown>): number[] {
  return withoutDoubleBos(tokenizer, tokenizer.encode(template.render(templateMessages(messages), { variables }), { addSpecial: true, parseSpecial: true, stopAfter }));
}

/** A template that writes BOS's text gets BOS twice once encode adds its own: keep one. */
function withoutDoubleBos(tokenizer: Tokenizer, ids: number[]): number[] {
  return tokenizer.bos !== undefined && ids[0] === tokenizer.bos && ids[1] === tokenizer.bos ? ids.slice(1) : ids;
}

/**
 * A raw text prompt (/v1/completions) may spell control tokens ("<|im_start|>user..."), and they are
 * read as those tokens, as llama-server does (it tokenizes completion prompts with parse_special).
 */
export const RAW_PROMPTS_PARSE_SPECIAL = true;

/** The longest prompt a bounded request (a decode-time KV policy) may send: a guard on tokenizing, not a KV limit. */
export const BOUNDED_PROMPT_TOKENS = 1 << 20;

/** A prompt's token ids, and where its documents lie among them. */
export interface EncodedPrompt {
  tokens: readonly number[];
  /**
   * Token ranges [start, end) of the prompt's documents (RequestParams.documents): in order, disjoint,
   * never empty, and never holding the prompt's last token, whose logits must be computed. Absent when
   * the prompt marks no documents.
   */
  documents?: readonly (readonly [number, number])[];
}

/** What of a request, besides its input, decides how its prompt is encoded. */
export interface PromptRequest {
  /** The request's KV policy keeps it within the context, so its prompt may be longer (up to a sanity cap). */
  bounded?: boolean;
  /** RequestParams.blend: a text prompt is cut into documents only when the request asks for blending. */
  blend?: RequestParams['blend'];
  /** RequestParams.tools: the chat template renders them. */
  tools?: RequestParams['tools'];
}

export class PromptEncoder {
  readonly maxTokenBytes: number;

  constructor(
    private readonly tokenizer: Tokenizer,
    private readonly template: ChatTemplate,
    /** Tokens per sequence: a prompt needs at most context - 1 (one token must be generated). */
    private readonly context: number,
    /** Where a blending text prompt is cut into documents (see prompt-documents.ts). */
    private readonly blendSeparator = DEFAULT_BLEND_SEPARATOR,
  ) {
    this.maxTokenBytes = maxTokenBytes(tokenizer);
  }

  /** The prompt's token ids and document ranges; throws ContextLengthError or another RequestFaultError instead. */
  encode(input: EngineInput, request: PromptRequest = {}): EncodedPrompt {
    const limit = request.bounded ? BOUNDED_PROMPT_TOKENS : this.context;
    if (typeof input === 'string') {
      const pieces = blendRequested(request.blend) ? separatedPieces(input, this.blendSeparator) : [];
      if (pieces.length > 1) return this.encodePieces(pieces, limit, { parseSpecial: RAW_PROMPTS_PARSE_SPECIAL, chat: false, ranges: true });
      const encode = (stop: number) => this.tokenizer.encode(input, { addSpecial: true, parseSpecial: RAW_PROMPTS_PARSE_SPECIAL, stopAfter: stop });
      return { tokens: this.checked(this.encodeText(input, limit, encode), limit, 'at least ') };
    }
    if (!Array.isArray(input)) throw new RequestFaultError('input must be a string, an array of token ids, or an array of chat messages', 'invalid_type', 'prompt');
    // Token ids: the worker checks them against the vocabulary; only their number is judged here.
    if (input.every((t) => typeof t === 'number')) return { tokens: this.checked(input as readonly number[], limit, '') };
    checkChatMessages(input);
    const messages = input;
    // Marked documents decide the tokens; `blend: false` only keeps their ranges from the engine.
    // The template decides how (and whether) the tools appear in the prompt.
    if (request.tools !== undefined && !Array.isArray(request.tools)) throw new RequestFaultError('tools must be an array', 'invalid_type', 'tools');
    const variables = request.tools ? { tools: request.tools } : undefined;
    const pieces = promptFault(() => markedChatPieces(this.template, messages, variables));
    if (pieces) return this.encodePieces(pieces, limit, { parseSpecial: true, chat: true, ranges: request.blend !== false });
    const text = promptFault(() => this.template.render(templateMessages(messages), { variables }));
    return { tokens: this.checked(this.encodeText(text, limit, (stop) => renderChat(this.template, this.tokenizer, messages, stop, variables)), limit, 'at least ') };
  }

  /**
   * Tokenizes each piece on its own and concatenates them: the first as a prompt's start (BOS), the
   * others as plain text. The whole is checked against the context as one prompt would be.
   */
  private encodePieces(pieces: readonly PromptPiece[], limit: number, how: { parseSpecial: boolean; chat: boolean; ranges: boolean }): EncodedPrompt {
    this.refuseBySize(pieces.reduce((n, p) => n + Buffer.byteLength(p.text, 'utf8'), 0), limit);
    const tokens: number[] = [];
    const documents: [number, number][] = [];
    for (const [i, piece] of pieces.entries()) {
      const stopAfter = Math.max(0, limit - 1 - tokens.length);
      let ids = promptFault(() => this.tokenizer.encode(piece.text, { addSpecial: i === 0, parseSpecial: how.parseSpecial, stopAfter }));
      if (i === 0 && how.chat) ids = withoutDoubleBos(this.tokenizer, ids);
      const start = tokens.length;
      for (const id of ids) tokens.push(id);
      if (tokens.length >= limit) break;
      if (piece.document && how.ranges && ids.length > 0) documents.push([start, tokens.length]);
    }
    this.checked(tokens, limit, 'at least ');
    // The last token is computed in any case (its logits are needed): a document that ends the prompt is none.
    if (documents.at(-1)?.[1] === tokens.length) documents.pop();
    return documents.length > 0 ? { tokens, documents } : { tokens };
  }

  /** Refuses `text` by its size when that proves it too long, else tokenizes it with the early stop. */
  private encodeText(text: string, limit: number, tokenize: (stopAfter: number) => number[]): number[] {
    this.refuseBySize(Buffer.byteLength(text, 'utf8'), limit);
    return promptFault(() => tokenize(limit - 1));
  }

  private refuseBySize(bytes: number, limit: number): void {
    const atLeast = Math.ceil(bytes / this.maxTokenBytes);
    if (atLeast >= limit) {
      throw new ContextLengthError(
        `the prompt has at least ${atLeast} tokens (${bytes} bytes; no token of this vocabulary stands for more than ` +
          `${this.maxTokenBytes}); ${this.room(limit)}`,
      );
    }
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
