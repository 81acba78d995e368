// How a client marks the documents of a prompt (RAG chunks whose cached KV may be reused wherever they
// appear, see RequestParams.blend), turned into pieces of text that the prompt encoder tokenizes one by
// one. A document is tokenized alone, so its token ids do not depend on what precedes it.
//  - Text prompts follow LMCache's convention: the text is split at a separator string (" # # " by
//    default). The first piece is the leading text (a system prompt, possibly empty), the last is the
//    question, and every piece between them is a document. The separator itself is dropped.
//  - Chat messages mark documents as content parts with `document: true`. The template is rendered
//    with a sentinel string in each document's place, and the rendered text is cut at the sentinels.
import type { ChatTemplate } from '../model/chat-template.js';
import type { RequestParams } from './completion.js';
import { hasDocumentParts, templateMessages, type ChatMessage, type ChatTextPart } from './chat-message.js';
import { ENGINE_DEFAULTS, parseEngineConfig } from '../config/engine-config.js';

/** LMCache's chunk separator (the schema's default). */
export const DEFAULT_BLEND_SEPARATOR = ENGINE_DEFAULTS.blendSeparator;

/** A stretch of prompt text the encoder tokenizes on its own. */
export interface PromptPiece {
  text: string;
  /** A document: its tokens become one of the prompt's document ranges. */
  document: boolean;
}

/** Engine.load's blendSeparator, checked. */
export function resolveBlendSeparator(separator: unknown): string {
  return parseEngineConfig({ blendSeparator: separator as string | undefined }).blendSeparator;
}

/** Whether a request asks for blending: true, or { recompute } (false and absent do not). */
export function blendRequested(blend: RequestParams['blend']): boolean {
  return blend === true || (typeof blend === 'object' && blend !== null);
}

/** A text prompt cut at the separator; a text without it is one piece, the question. */
export function separatedPieces(text: string, separator: string): PromptPiece[] {
  const parts = text.split(separator);
  return parts.map((part, i) => ({ text: part, document: i > 0 && i < parts.length - 1 }));
}

/**
 * Chat messages rendered by the template, cut where their document parts go: template text and
 * documents alternate, starting and ending with template text (either may be empty). Undefined when no
 * part is a document. A template that drops a message drops its documents with it; one that writes a
 * message twice writes its documents twice.
 */
export function markedChatPieces(template: ChatTemplate, messages: readonly ChatMessage[], variables?: Record<string, unknown>): PromptPiece[] | undefined {
  if (!hasDocumentParts(messages)) return undefined;
  const documents: string[] = [];
  const mark = sentinelMark(messages);
  const rendered = template.render(templateMessages(messages, (part: ChatTextPart) => `${mark}${documents.push(part.text) - 1}${SENTINEL_END}`), { variables });
  const pieces: PromptPiece[] = [];
  const sentinel = new RegExp(`${mark}(\\d+)${SENTINEL_END}`, 'g');
  let from = 0;
  for (const m of rendered.matchAll(sentinel)) {
    pieces.push({ text: rendered.slice(from, m.index), document: false }, { text: documents[Number(m[1])]!, document: true });
    from = m.index + m[0].length;
  }
  pieces.push({ text: rendered.slice(from), document: false });
  return pieces;
}

// Private-use characters: no tokenizer is asked to read a sentinel (the text is cut there first), and
// templates have no reason to change them.
const SENTINEL_START = '\uE000';
const SENTINEL_END = '\uE001';

/** A sentinel opening that no text of these messages contains, so every match in the rendering is ours. */
function sentinelMark(messages: readonly ChatMessage[]): string {
  const texts = JSON.stringify(templateMessages(messages)) + JSON.stringify(messages);
  for (let n = 0; ; n++) {
    const mark = `${SENTINEL_START}vserve-document-${n}:`;
    if (!texts.includes(mark)) return mark;
  }
}
