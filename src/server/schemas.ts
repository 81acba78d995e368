// Request bodies of /v1/completions and /v1/chat/completions, validated with zod, and their translation
// into the engine's RequestParams. Optional fields accept null, as many OpenAI clients send it.
import { z } from 'zod';
import { EVICTION_POLICY_NAMES } from '../kv/eviction/index.js';
import { MAX_CHOICES, type ChatMessage, type ChatTextPart, type RequestParams } from '../engine/engine-types.js';
import { invalidField } from './errors.js';
import { refusableFields } from './refused-fields.js';
import { templateArguments } from '../model/tool-call-history.js';
import { toolCallSchema, toolChoiceSchema, toolSchema } from './tool-calls.js';

const tokenIds = z.array(z.number().int().min(0)).min(1);

const common = {
  model: z.string().nullish(),
  max_tokens: z.number().int().min(1).nullish(),
  temperature: z.number().min(0).max(2).nullish(),
  top_p: z.number().gt(0).max(1).nullish(),
  /** -1 (vLLM) or 0 (llama.cpp) turn top-k off. */
  top_k: z.number().int().min(-1).nullish(),
  min_p: z.number().min(0).max(1).nullish(),
  seed: z.number().int().nullish(),
  stop: z.union([z.string().min(1), z.array(z.string().min(1)).max(16)], { error: 'must be a non-empty string or an array of at most 16 of them' }).nullish(),
  presence_penalty: z.number().min(-2).max(2).nullish(),
  frequency_penalty: z.number().min(-2).max(2).nullish(),
  repetition_penalty: z.number().gt(0).max(10).nullish(),
  /** Choices from one prompt: the prompt is computed once and its KV shared by all of them. */
  n: z.number().int().min(1).max(MAX_CHOICES).nullish(),
  stream: z.boolean().nullish(),
  stream_options: z.object({ include_usage: z.boolean().nullish() }).nullish(),
  user: z.string().nullish(),
  /** Token id (as a string key) -> bias in [-100, 100]; ids are checked against the vocabulary by the engine. */
  logit_bias: z.record(z.string().regex(/^\d+$/, { error: 'keys must be token ids' }), z.number().min(-100).max(100)).nullish(),
  /** JSON output by constrained decoding; the schema's own keywords are judged by the engine. */
  response_format: z.discriminatedUnion('type', [
    z.strictObject({ type: z.literal('text') }),
    z.strictObject({ type: z.literal('json_object') }),
    z.strictObject({
      type: z.literal('json_schema'),
      json_schema: z.strictObject({ name: z.string().min(1).max(64), description: z.string().nullish(), schema: z.record(z.string(), z.unknown()).nullish(), strict: z.boolean().nullish() }),
    }),
  ], { error: 'must be {"type": "text"}, {"type": "json_object"} or {"type": "json_schema", "json_schema": {...}}' }).nullish(),
  /** vLLM's prefix-cache tenant key: requests with different salts never share cached KV. */
  cache_salt: z.string().min(1).max(256).nullish(),
  /** vserve's KV eviction (engine/kv-eviction.ts): the policy, and the tokens (or fraction of the prompt) it keeps. */
  kv_policy: z.enum(['none', ...EVICTION_POLICY_NAMES], { error: `must be one of none, ${EVICTION_POLICY_NAMES.join(', ')}` }).nullish(),
  kv_budget: z.number({ error: 'must be a number: tokens to keep, or a fraction of the prompt' }).gt(0).nullish(),
  /**
   * vserve's reuse of the prompt's documents' cached KV wherever they appear (CacheBlend): true, or
   * { recompute } = the share of document tokens recomputed. Completion prompts mark documents with the
   * server's blend separator; chat messages with content parts marked "document": true.
   */
  blend: z.union([
    z.boolean(),
    z.strictObject({ recompute: z.number({ error: 'must be a fraction in [0, 1]' }).min(0).max(1).nullish() }),
  ], { error: 'must be true, false or {"recompute": a fraction in [0, 1]}' }).nullish(),
};

/** Fields refused-fields.ts judges before the schema runs: what reaches here is an accepted value. */
const judged = (endpoint: 'completion' | 'chat') => Object.fromEntries(refusableFields(endpoint).map((f) => [f, z.unknown().optional()]));

// Strict: a field nobody reads is an error naming it, never silently ignored.
export const completionRequest = z.strictObject({
  ...common,
  ...judged('completion'),
  prompt: z.union([z.string(), z.array(z.string()).length(1), tokenIds, z.array(tokenIds).length(1)], {
    error: 'must be a string or an array of token ids (one prompt per request)',
  }),
  /** The legacy completions API: how many alternatives to return per token (0-5). */
  logprobs: z.number().int().min(0).max(5).nullish(),
  echo: z.literal(false, { error: 'echo is not supported' }).nullish(),
});

const contentPart = z.strictObject({
  type: z.literal('text', { error: 'only text content parts are supported' }),
  text: z.string(),
  /** vserve's mark of a reusable document (see `blend`). */
  document: z.boolean({ error: 'must be true or false' }).nullish(),
});

const message = z.strictObject({
  role: z.enum(['system', 'developer', 'user', 'assistant', 'tool']),
  content: z.union([z.string(), z.array(contentPart), z.null()], { error: 'must be a string or an array of text parts' }),
  name: z.string().nullish(),
  /** What vserve's own assistant messages carry, so a client can send a response's message back as it came. */
  refusal: z.string().nullish(),
  tool_calls: z.array(toolCallSchema).nullish(),
  tool_call_id: z.string().nullish(),
});

export const chatRequest = z.strictObject({
  ...common,
  ...judged('chat'),
  messages: z.array(message).min(1),
  max_completion_tokens: z.number().int().min(1).nullish(),
  logprobs: z.boolean().nullish(),
  top_logprobs: z.number().int().min(0).max(20).nullish(),
  tools: z.array(toolSchema).max(128).nullish(),
  tool_choice: toolChoiceSchema.nullish(),
  /** One call per reply at most, which honours false as well as true. */
  parallel_tool_calls: z.boolean().nullish(),
});

export type CompletionRequest = z.infer<typeof completionRequest>;
export type ChatRequest = z.infer<typeof chatRequest>;

/** "messages[0].content" from zod's path. */
function paramName(path: readonly PropertyKey[]): string | null {
  if (path.length === 0) return null;
  return path.map((p, i) => (typeof p === 'number' ? `[${p}]` : i === 0 ? String(p) : `.${String(p)}`)).join('');
}

/**
 * Inside a union (content: a string or parts), the issue of the one branch whose type the value had,
 * when exactly one got past the type check: a bad part's field is then named, not the whole union.
 */
function branchIssue(issue: z.core.$ZodIssue): z.core.$ZodIssue {
  if (issue.code !== 'invalid_union') return issue;
  const deeper = issue.errors.filter((branch) => branch[0] !== undefined && branch[0].path.length > 0);
  if (deeper.length !== 1) return issue;
  const inner = branchIssue(deeper[0]![0]!);
  return { ...inner, path: [...issue.path, ...inner.path] };
}

/** Parses a body with a schema; the first problem becomes a 400 naming its field. */
export function parseBody<T>(schema: z.ZodType<T>, body: unknown): T {
  const r = schema.safeParse(body);
  if (r.success) return r.data;
  const issue = branchIssue(r.error.issues[0]!);
  if (issue.code === 'unrecognized_keys') {
    const key = issue.keys[0]!;
    const where = paramName([...issue.path, key])!;
    throw invalidField(where, `Unrecognized request field '${where}': vserve does not implement it (see the server section of the README for the fields it takes).`, 'unknown_parameter');
  }
  const param = paramName(issue.path);
  const message = param ? `Invalid value for '${param}': ${issue.message}` : `Invalid request body: ${issue.message}`;
  throw invalidField(param, message, issue.code === 'invalid_type' ? 'invalid_type' : 'invalid_value');
}

/** The sampler, stop and logprob fields both endpoints share, in the engine's terms. */
function commonParams(b: CompletionRequest | ChatRequest, maxTokens: number | null | undefined): RequestParams {
  const p: RequestParams = {
    maxTokens: maxTokens ?? undefined,
    temperature: b.temperature ?? undefined,
    topP: b.top_p ?? undefined,
    topK: b.top_k == null ? undefined : Math.max(0, b.top_k),
    minP: b.min_p ?? undefined,
    seed: b.seed ?? undefined,
    stop: b.stop == null ? undefined : typeof b.stop === 'string' ? [b.stop] : b.stop,
    presencePenalty: b.presence_penalty ?? undefined,
    frequencyPenalty: b.frequency_penalty ?? undefined,
    repetitionPenalty: b.repetition_penalty ?? undefined,
    cacheSalt: b.cache_salt ?? undefined,
    logitBias: b.logit_bias ?? undefined,
    responseFormat: responseFormat(b.response_format),
    n: b.n ?? undefined,
    kvPolicy: b.kv_policy ?? undefined,
    kvBudget: b.kv_budget ?? undefined,
    blend: blend(b.blend),
  };
  // The engine treats an explicit undefined like a missing field, but keep the object tidy.
  for (const k of Object.keys(p) as (keyof RequestParams)[]) if (p[k] === undefined) delete p[k];
  return p;
}

/** blend in the engine's terms (a null recompute: the engine's default). */
function blend(b: CompletionRequest['blend']): RequestParams['blend'] {
  if (b == null || typeof b === 'boolean') return b ?? undefined;
  return b.recompute == null ? {} : { recompute: b.recompute };
}

/** response_format in the engine's terms ('text' is what happens anyway). */
function responseFormat(f: CompletionRequest['response_format']): RequestParams['responseFormat'] {
  if (f == null || f.type === 'text') return undefined;
  if (f.type === 'json_object') return { type: 'json_object' };
  return { type: 'json_schema', schema: f.json_schema.schema ?? {}, strict: f.json_schema.strict === true };
}

export function completionParams(b: CompletionRequest): RequestParams {
  const p = commonParams(b, b.max_tokens);
  if (b.logprobs != null) Object.assign(p, { logprobs: true, topLogprobs: b.logprobs });
  return p;
}

export function chatParams(b: ChatRequest): RequestParams {
  const p = commonParams(b, b.max_completion_tokens ?? b.max_tokens);
  if (b.logprobs) Object.assign(p, { logprobs: true, topLogprobs: b.top_logprobs ?? 0 });
  return p;
}

/** The prompt as the engine takes it: text or token ids. */
export function completionInput(b: CompletionRequest): string | number[] {
  const p = b.prompt;
  if (typeof p === 'string') return p;
  const first = p[0];
  if (typeof first === 'string') return first;
  if (Array.isArray(first)) return first;
  return p as number[];
}

/**
 * Chat messages in the engine's terms: text content, or text parts where some are marked as documents
 * (the engine tokenizes those on their own; other parts are joined as before). An assistant message's
 * calls and a tool result's call id go to the chat template as fields, the calls' arguments parsed
 * (model/tool-call-history.ts); a null content is empty text.
 */
export function chatInput(b: ChatRequest): ChatMessage[] {
  return b.messages.map((m) => {
    const out: ChatMessage = { role: m.role, content: messageContent(m) };
    if (m.name) out.name = m.name;
    if (m.tool_calls?.length) {
      out.tool_calls = m.tool_calls.map((c) => ({ id: c.id, type: c.type, function: { name: c.function.name, arguments: templateArguments(c.function.arguments) } }));
    }
    if (m.tool_call_id != null) out.tool_call_id = m.tool_call_id;
    return out;
  });
}

function messageContent(m: ChatRequest['messages'][number]): ChatMessage['content'] {
  const parts = Array.isArray(m.content) ? m.content : [];
  if (parts.some((p) => p.document === true)) {
    return parts.map((p): ChatTextPart => (p.document === true ? { type: 'text', text: p.text, document: true } : { type: 'text', text: p.text }));
  }
  return m.content == null ? '' : typeof m.content === 'string' ? m.content : parts.map((p) => p.text).join('');
}
