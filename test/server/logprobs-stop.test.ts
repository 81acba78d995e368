// Logprobs end where the text ends: a stop string's own tokens (any that reach into it), held back
// while they might begin it and dropped with it, never appear in logprobs, whole or streamed, on
// either endpoint. The truth is the same request without the stop: its tokens up to the cut.
import assert from 'node:assert/strict';
import { after, before, test } from 'node:test';
import OpenAI from 'openai';
import { STORIES_GREEDY } from '../paths.js';
import { MODEL, startServer, type TestServer } from './helpers.js';

let s: TestServer;
let client: OpenAI;
let unstopped: string[];
before(async () => {
  s = await startServer();
  client = new OpenAI({ baseURL: `${s.url}/v1`, apiKey: 'x', maxRetries: 0 });
  await runUnstopped();
});
after(() => s.close());

/** The tokens of `all` (a run without the stop) that lie wholly inside `text`: what logprobs must name. */
function inside(all: string[], text: string): string[] {
  const out: string[] = [];
  let at = 0;
  for (const t of all) {
    if (at + t.length > text.length) break;
    out.push(t);
    at += t.length;
  }
  return out;
}

async function runUnstopped() {
  const r = await client.completions.create({ model: MODEL, prompt: 'Once upon a time', max_tokens: 60, temperature: 0, logprobs: 0 });
  unstopped = r.choices[0]!.logprobs!.tokens!;
  assert.equal(unstopped.join(''), r.choices[0]!.text);
}

// Stops that begin mid-token and span several tokens of the greedy text.
const STOPS = ['Lily', 'girl named', 'ttle g', ' She loved'];

test('completions: logprob tokens stop where the text stops', async () => {
  for (const stop of STOPS) {
    const r = await client.completions.create({ model: MODEL, prompt: 'Once upon a time', max_tokens: 60, temperature: 0, stop: [stop], logprobs: 2 });
    const c = r.choices[0]!;
    assert.equal(c.text, STORIES_GREEDY.slice(0, STORIES_GREEDY.indexOf(stop)));
    assert.equal(c.finish_reason, 'stop');
    assert.deepEqual(c.logprobs!.tokens, inside(unstopped, c.text), stop);
    assert.equal(c.logprobs!.tokens!.length, c.logprobs!.token_logprobs!.length);
  }
});

test('completions streamed: the same logprob tokens, with offsets that add up', async () => {
  for (const stop of STOPS) {
    const stream = await client.completions.create({ model: MODEL, prompt: 'Once upon a time', max_tokens: 60, temperature: 0, stop: [stop], logprobs: 0, stream: true });
    let text = '';
    const tokens: string[] = [];
    const offsets: number[] = [];
    for await (const chunk of stream) {
      const c = chunk.choices[0]!;
      text += c.text;
      if (c.logprobs) {
        tokens.push(...c.logprobs.tokens!);
        offsets.push(...c.logprobs.text_offset!);
      }
    }
    assert.equal(text, STORIES_GREEDY.slice(0, STORIES_GREEDY.indexOf(stop)));
    assert.deepEqual(tokens, inside(unstopped, text), stop);
    let at = 0;
    tokens.forEach((t, i) => {
      assert.equal(offsets[i], at);
      at += t.length;
    });
  }
});

test('chat: logprobs content stops with the text; without a stop every token is there', async () => {
  const stop = 'named';
  const r = await client.chat.completions.create({ model: MODEL, messages: [{ role: 'user', content: 'Once upon a time' }], max_tokens: 40, temperature: 0, logprobs: true });
  const full = r.choices[0]!;
  assert.equal(full.logprobs!.content!.map((e) => e.token).join(''), full.message.content);
  const cut = full.message.content!.indexOf(stop);
  if (cut < 0) return;
  const s2 = await client.chat.completions.create({ model: MODEL, messages: [{ role: 'user', content: 'Once upon a time' }], max_tokens: 40, temperature: 0, logprobs: true, stop: [stop] });
  const c = s2.choices[0]!;
  assert.equal(c.message.content, full.message.content!.slice(0, cut));
  const all = full.logprobs!.content!.map((e) => e.token);
  assert.deepEqual(c.logprobs!.content!.map((e) => e.token), inside(all, c.message.content!));
});
