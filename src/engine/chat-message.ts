// The engine's chat messages: a message's content is a string, or an array of text parts as the OpenAI
// API sends them. A part marked `document: true` is a reusable document (a RAG chunk): the prompt
// encoder tokenizes it on its own so its tokens, and so its cached KV, are the same wherever it appears
// (see prompt-documents.ts). Chat templates only ever see string content: parts are joined first.
import type { ChatMessage as TemplateMessage } from '../model/chat-template.js';
import { RequestFaultError } from './error-kind.js';

/** One text part of a message's content. */
export interface ChatTextPart {
  type: 'text';
  text: string;
  /** A document whose cached KV may be reused wherever it appears (blending). */
  document?: boolean;
}

export interface ChatMessage {
  role: string;
  content: string | readonly ChatTextPart[];
  /** Other fields (name, tool calls, …) are passed through to the template as they are. */
  [field: string]: unknown;
}

/** Throws the request's error unless `input` is an array of well-formed chat messages. */
export function checkChatMessages(input: readonly unknown[]): asserts input is readonly ChatMessage[] {
  input.forEach((m, i) => {
    if (typeof m !== 'object' || m === null || typeof (m as ChatMessage).role !== 'string') {
      throw new RequestFaultError('chat messages must each be { role: string, content: string or text parts }', 'invalid_type', 'prompt');
    }
    const content = (m as ChatMessage).content;
    if (typeof content === 'string') return;
    if (!Array.isArray(content)) throw new RequestFaultError(`message ${i}: content must be a string or an array of text parts`, 'invalid_type', 'prompt');
    content.forEach((p: unknown, j) => {
      const part = p as Partial<ChatTextPart> | null;
      if (typeof part !== 'object' || part === null || part.type !== 'text' || typeof part.text !== 'string') {
        throw new RequestFaultError(`message ${i}, part ${j}: a content part must be { type: 'text', text: string }`, 'invalid_type', 'prompt');
      }
      if (part.document !== undefined && typeof part.document !== 'boolean') {
        throw new RequestFaultError(`message ${i}, part ${j}: document must be true or false`, 'invalid_type', 'prompt');
      }
    });
  });
}

export function hasDocumentParts(messages: readonly ChatMessage[]): boolean {
  return messages.some((m) => typeof m.content !== 'string' && m.content.some((p) => p.document === true));
}

/**
 * The messages as a chat template takes them: each content a string, its parts joined with nothing
 * between them. `documentText` says what a document part becomes (by default its own text).
 */
export function templateMessages(messages: readonly ChatMessage[], documentText: (part: ChatTextPart) => string = (p) => p.text): TemplateMessage[] {
  return messages.map((m) => {
    if (typeof m.content === 'string') return m as TemplateMessage;
    const content = m.content.map((p) => (p.document === true ? documentText(p) : p.text)).join('');
    return { ...m, content };
  });
}
