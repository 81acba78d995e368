// The prompt tokens a replica will compute for a request body, worked out in the router so that it can
// hash them with the replicas' chain and see which replica holds the prompt's prefix. Only the GGUF's
// tokenizer and chat template are read (no weights), and the body goes through the replica's own steps:
// the server's schemas turn it into an engine input and parameters (kv_policy and blend change the tokens),
// and the engine's PromptEncoder renders and tokenizes it. A body the router cannot read this way is not
// judged here: it is forwarded all the same and the replica answers it.
import { boundsContext } from '../engine/kv-eviction.js';
import { PromptEncoder } from '../engine/prompt-encoder.js';
import { resolveBlendSeparator } from '../engine/prompt-documents.js';
import { readModelConfig } from '../model/architectures/index.js';
import { ChatTemplate } from '../model/chat-template.js';
import { modelFingerprint } from '../model/fingerprint.js';
import { GGUFFile } from '../model/gguf/reader.js';
import { createTokenizer } from '../model/tokenizer/index.js';
import type { Endpoint } from '../server/openai-format.js';
import { ApiError } from '../server/errors.js';
import { chatInput, chatParams, chatRequest, completionInput, completionParams, completionRequest, parseBody } from '../server/schemas.js';

export interface RequestPrompt {
  tokens: readonly number[];
  /** The request's cache_salt ('' when none): part of the chain's root, as on the replica. */
  salt: string;
  /**
   * False for a request that runs under a decode-time KV policy (kv_policy): its sequence evicts as it
   * grows, so the replica neither reuses nor shares cached blocks for it.
   */
  shareable: boolean;
}

export class RequestTokens {
  private constructor(
    private readonly encoder: PromptEncoder,
    /** The model file's own fingerprint, which starts every replica's chain fingerprint. */
    readonly modelFingerprint: string,
  ) {}

  /**
   * Reads the tokenizer and chat template of a GGUF file (its tensors are never loaded). `blendSeparator`
   * must be the replicas' (their --blend-separator), or blending text prompts are cut differently here.
   */
  static open(modelPath: string, blendSeparator?: string): RequestTokens {
    const separator = resolveBlendSeparator(blendSeparator);
    const file = GGUFFile.open(modelPath);
    try {
      // Longer prompts fail on every replica (its context is at most the model's), so tokenizing stops there.
      const context = readModelConfig(file).contextLength;
      return new RequestTokens(new PromptEncoder(createTokenizer(file), ChatTemplate.fromGGUF(file), context, separator), modelFingerprint(file));
    } finally {
      file.close();
    }
  }

  /** The prompt of a /v1/completions or /v1/chat/completions body, or undefined when the replica must judge it. */
  prompt(endpoint: Endpoint, body: unknown): RequestPrompt | undefined {
    try {
      const { input, params, salt } = endpoint === 'chat' ? chatPrompt(body) : completionPrompt(body);
      const bounded = boundsContext(params.kvPolicy);
      return { tokens: this.encoder.encode(input, { bounded, blend: params.blend, tools: params.tools }).tokens, salt, shareable: !bounded };
    } catch (e) {
      // The request's own fault (a bad field, a prompt over the context): the replica says so itself.
      if (e instanceof ApiError || (e as { kind?: unknown }).kind === 'request') return undefined;
      throw e;
    }
  }
}

function chatPrompt(body: unknown) {
  const b = parseBody(chatRequest, body);
  // The replica's template renders the tools unless tool_choice is "none" (a request it refuses instead is not routed on its tokens).
  const tools = b.tools?.length && b.tool_choice !== 'none' ? b.tools : undefined;
  return { input: chatInput(b), params: { ...chatParams(b), tools }, salt: b.cache_salt ?? '' };
}

function completionPrompt(body: unknown) {
  const b = parseBody(completionRequest, body);
  return { input: completionInput(b), params: completionParams(b), salt: b.cache_salt ?? '' };
}
