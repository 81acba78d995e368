// One soak request of a given kind, and what came of it. Every kind knows what a correct answer looks
// like (a finished completion, a stream ending in finish_reason + [DONE], the exact 4xx for a bad body,
// a 429 when the server is full); anything else is "unexpected" with a line saying what was seen.
import { Rng } from '../src/engine/rng.js';
import { sseData } from '../src/loadgen/sse-frames.js';

export type SoakKind = 'whole' | 'stream' | 'slow-reader' | 'abort-stream' | 'abort-early' | 'invalid';

export type SoakOutcome =
  /** Accepted and finished with a finish reason. */
  | 'finished'
  /** Accepted, then ended by the drain's grace period with a server_shutdown error. */
  | 'drained'
  /** Refused as it should be: the 4xx an invalid body gets, 429 when full, 503 while draining. */
  | 'rejected'
  /** The client hung up on purpose. */
  | 'aborted'
  | 'unexpected';

export interface SoakResult {
  kind: SoakKind;
  outcome: SoakOutcome;
  status?: number;
  detail?: string;
}

const PROMPTS = ['Once upon a time', 'The little dog', 'Lily and Tom went to the park', 'One day, a big bird', 'Mom said'];

/** A bad body and the status it must get. */
const INVALID: { body: string; type: string; status: number }[] = [
  { body: '{"prompt": "x",', type: 'application/json', status: 400 },
  { body: '{"prompt": "Once", "max_tokens": -1}', type: 'application/json', status: 400 },
  { body: '{"prompt": "Once"}', type: 'text/plain', status: 415 },
  { body: '{"model": "no-such-model", "prompt": "Once"}', type: 'application/json', status: 404 },
  { body: JSON.stringify({ prompt: 'Once upon a time '.repeat(6000) }), type: 'application/json', status: 400 },
];

/** Picks a kind with the soak's mix. */
export function pickKind(rng: Rng): SoakKind {
  const r = rng.next();
  if (r < 0.35) return 'whole';
  if (r < 0.65) return 'stream';
  if (r < 0.72) return 'slow-reader';
  if (r < 0.82) return 'abort-stream';
  if (r < 0.88) return 'abort-early';
  return 'invalid';
}

function generationBody(rng: Rng, stream: boolean, maxTokens: number): string {
  const chat = rng.next() < 0.5;
  const prompt = PROMPTS[rng.nextUint32() % PROMPTS.length]!;
  const sampled = rng.next() < 0.5 ? { temperature: 0.8, seed: rng.nextUint32() % 1000 } : { temperature: 0 };
  return JSON.stringify({
    ...(chat ? { messages: [{ role: 'user', content: prompt }] } : { prompt }),
    max_tokens: maxTokens, stream, ...sampled, ...(stream ? { stream_options: { include_usage: true } } : {}),
  });
}

const isRefusal = (status: number) => status === 429 || status === 503;

export async function soakRequest(url: string, kind: SoakKind, rng: Rng): Promise<SoakResult> {
  const chatPath = (body: string) => (body.includes('"messages"') ? '/v1/chat/completions' : '/v1/completions');
  const controller = new AbortController();
  let abortedByUs = false;
  const abort = () => {
    abortedByUs = true;
    controller.abort();
  };
  try {
    if (kind === 'invalid') {
      const bad = INVALID[rng.nextUint32() % INVALID.length]!;
      const r = await fetch(`${url}/v1/completions`, { method: 'POST', headers: { 'content-type': bad.type }, body: bad.body });
      const json = (await r.json()) as { error?: { message?: string } };
      // A full server may refuse a well-formed body (429) before it looks at the prompt.
      if ((r.status === bad.status || isRefusal(r.status)) && typeof json.error?.message === 'string') return { kind, outcome: 'rejected', status: r.status };
      return { kind, outcome: 'unexpected', status: r.status, detail: `expected ${bad.status}: ${JSON.stringify(json).slice(0, 200)}` };
    }
    const stream = kind !== 'whole' && kind !== 'abort-early';
    const body = generationBody(rng, stream, kind === 'slow-reader' ? 64 : 1 + (rng.nextUint32() % 48));
    const pending = fetch(`${url}${chatPath(body)}`, { method: 'POST', headers: { 'content-type': 'application/json' }, body, signal: controller.signal });
    if (kind === 'abort-early') setImmediate(abort);
    const res = await pending;
    if (isRefusal(res.status)) {
      await res.arrayBuffer();
      return { kind, outcome: 'rejected', status: res.status };
    }
    if (res.status !== 200) return { kind, outcome: 'unexpected', status: res.status, detail: (await res.text()).slice(0, 200) };
    if (!stream) {
      const json = (await res.json()) as { choices?: { finish_reason?: string }[]; usage?: unknown };
      const reason = json.choices?.[0]?.finish_reason;
      if ((reason === 'stop' || reason === 'length') && json.usage) return { kind, outcome: 'finished', status: 200 };
      return { kind, outcome: 'unexpected', status: 200, detail: `no finish_reason/usage: ${JSON.stringify(json).slice(0, 200)}` };
    }
    return await readStream(res, kind, kind === 'abort-stream' ? abort : undefined);
  } catch (e) {
    if (abortedByUs) return { kind, outcome: 'aborted' };
    return { kind, outcome: 'unexpected', detail: `${(e as Error).name}: ${(e as Error).message} ${String((e as { cause?: unknown }).cause ?? '')}` };
  }
}

/** Reads an SSE completion stream to its end; `abortAfterFirst` hangs up after the first chunk. */
async function readStream(res: Response, kind: SoakKind, abortAfterFirst: (() => void) | undefined): Promise<SoakResult> {
  let finish: string | undefined;
  let done = false;
  let shutdown = false;
  for await (const data of sseData(res.body!)) {
    if (data === '[DONE]') {
      done = true;
      continue;
    }
    const chunk = JSON.parse(data) as { error?: { code?: string; message?: string }; choices?: { finish_reason?: string | null }[] };
    if (chunk.error) {
      if (chunk.error.code === 'server_shutdown') shutdown = true;
      else return { kind, outcome: 'unexpected', status: 200, detail: `error frame: ${JSON.stringify(chunk.error)}` };
    }
    finish = chunk.choices?.[0]?.finish_reason ?? finish;
    if (abortAfterFirst) {
      abortAfterFirst();
      return { kind, outcome: 'aborted' };
    }
    // A slow reader: the server must not care how fast the client reads.
    if (kind === 'slow-reader') await new Promise((r) => setTimeout(r, 5));
  }
  if (shutdown && done) return { kind, outcome: 'drained', status: 200 };
  if (done && (finish === 'stop' || finish === 'length')) return { kind, outcome: 'finished', status: 200 };
  return { kind, outcome: 'unexpected', status: 200, detail: `stream ended without ${done ? 'a finish_reason' : '[DONE]'}` };
}
