// One streamed completion against an OpenAI-compatible server, timed as a user would see it: time to
// the first token, the gaps between tokens, and the whole request.
import { sseData } from './sse-frames.js';

export interface RequestResult {
  index: number;
  ok: boolean;
  status: number;
  error?: string;
  ttftMs?: number;
  /** Gaps between consecutive content chunks. */
  tbtMs: number[];
  e2eMs: number;
  promptTokens: number;
  completionTokens: number;
  /** Prompt tokens the server did not compute (usage.prompt_tokens_details.cached_tokens). */
  cachedTokens: number;
}

export interface Target {
  url: string;
  model: string;
  apiKey?: string;
}

export async function streamCompletion(target: Target, index: number, prompt: string | readonly number[], maxTokens: number): Promise<RequestResult> {
  const start = performance.now();
  const result: RequestResult = { index, ok: false, status: 0, tbtMs: [], e2eMs: 0, promptTokens: 0, completionTokens: 0, cachedTokens: 0 };
  try {
    const res = await fetch(`${target.url}/v1/completions`, {
      method: 'POST',
      headers: { 'content-type': 'application/json', ...(target.apiKey ? { authorization: `Bearer ${target.apiKey}` } : {}) },
      body: JSON.stringify({ model: target.model, prompt, max_tokens: maxTokens, temperature: 0.8, stream: true, stream_options: { include_usage: true } }),
    });
    result.status = res.status;
    if (!res.ok || !res.body) {
      result.error = ((await res.json().catch(() => ({}))) as { error?: { message?: string } }).error?.message ?? res.statusText;
      return result;
    }
    let last: number | undefined;
    for await (const data of sseData(res.body)) {
      if (data === '[DONE]') continue;
      const chunk = JSON.parse(data) as {
        choices: { text: string }[];
        usage?: { prompt_tokens: number; completion_tokens: number; prompt_tokens_details?: { cached_tokens?: number } } | null;
        error?: { message: string };
      };
      if (chunk.error) throw new Error(chunk.error.message);
      if (chunk.usage) {
        result.promptTokens = chunk.usage.prompt_tokens;
        result.completionTokens = chunk.usage.completion_tokens;
        result.cachedTokens = chunk.usage.prompt_tokens_details?.cached_tokens ?? 0;
      }
      if (chunk.choices[0]?.text) {
        const now = performance.now();
        if (last === undefined) result.ttftMs = now - start;
        else result.tbtMs.push(now - last);
        last = now;
      }
    }
    result.ok = true;
  } catch (e) {
    result.error = failureCause(e);
  } finally {
    result.e2eMs = performance.now() - start;
  }
  return result;
}

/** fetch() says only "fetch failed"; the reason (ECONNREFUSED, a reset, a timeout) is in its cause. */
function failureCause(e: unknown): string {
  if (!(e instanceof Error)) return String(e);
  const cause = e.cause as { code?: string; message?: string } | undefined;
  return cause ? `${e.message}: ${cause.code ?? cause.message}` : e.message;
}
