// The data payloads of a server-sent event stream, one per frame, as they arrive ('[DONE]' included).
export async function* sseData(body: ReadableStream): AsyncGenerator<string> {
  let buffer = '';
  for await (const piece of body.pipeThrough(new TextDecoderStream())) {
    buffer += piece;
    let end: number;
    while ((end = buffer.indexOf('\n\n')) >= 0) {
      const frame = buffer.slice(0, end);
      buffer = buffer.slice(end + 2);
      if (frame.startsWith('data: ')) yield frame.slice(6);
    }
  }
}
