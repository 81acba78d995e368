// A streamed chat completion read back through the openai client: the content deltas, the tool-call
// deltas and the last finish reason, for the tool-call tests to check against the whole reply.
import type OpenAI from 'openai';

export interface StreamedChat {
  contents: string[];
  calls: OpenAI.Chat.Completions.ChatCompletionChunk.Choice.Delta.ToolCall[];
  finish: string | null;
}

export async function streamedChat(client: OpenAI, params: Omit<OpenAI.Chat.Completions.ChatCompletionCreateParamsStreaming, 'stream'>): Promise<StreamedChat> {
  const stream = await client.chat.completions.create({ ...params, stream: true });
  const out: StreamedChat = { contents: [], calls: [], finish: null };
  for await (const chunk of stream) {
    const c = chunk.choices[0];
    if (c?.delta.content) out.contents.push(c.delta.content);
    if (c?.delta.tool_calls) out.calls.push(...c.delta.tool_calls);
    out.finish = c?.finish_reason ?? out.finish;
  }
  return out;
}
