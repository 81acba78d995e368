// Server-sent event streams read as they arrive: whole frames (the text between blank lines), their
// data payloads ('[DONE]' included), or their named events. A frame is yielded only once it is complete.

/** Each complete frame's text, without the blank line that ends it. */
export async function* sseFrames(body: ReadableStream): AsyncGenerator<string> {
  let buffer = '';
  for await (const piece of body.pipeThrough(new TextDecoderStream())) {
    buffer += piece;
    let end: number;
    while ((end = buffer.indexOf('\n\n')) >= 0) {
      yield buffer.slice(0, end);
      buffer = buffer.slice(end + 2);
    }
  }
}

/** The data payloads of a server-sent event stream, one per frame, as they arrive ('[DONE]' included). */
export async function* sseData(body: ReadableStream): AsyncGenerator<string> {
  for await (const frame of sseFrames(body)) if (frame.startsWith('data: ')) yield frame.slice(6);
}

export interface SseEvent {
  /** The frame's `event:` name ('message' when it has none). */
  event: string;
  data: string;
}

/** Named events (`event: NAME` + `data: ...` lines); comment-only frames (pings) are skipped. */
export async function* sseEvents(body: ReadableStream): AsyncGenerator<SseEvent> {
  for await (const frame of sseFrames(body)) {
    let event = 'message';
    const data: string[] = [];
    for (const line of frame.split('\n')) {
      if (line.startsWith('event:')) event = line.slice(6).trim();
      else if (line.startsWith('data:')) data.push(line.slice(line.startsWith('data: ') ? 6 : 5));
    }
    if (data.length > 0) yield { event, data: data.join('\n') };
  }
}
