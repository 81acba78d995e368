// logit_bias is added to the logits before sampling: +100 on one token makes greedy decoding pick it
// every time, -100 on the greedy text's next token steers away from it; ids outside the vocabulary
// and values outside [-100, 100] are 400s naming logit_bias.
import assert from 'node:assert/strict';
import { after, before, test } from 'node:test';
import { STORIES_GREEDY } from '../paths.js';
import { postJson, startServer, tokenTexts, type TestServer } from './helpers.js';

let s: TestServer;
before(async () => {
  s = await startServer();
});
after(() => s.close());

const piece = (id: number) => new TextDecoder().decode(tokenTexts.piece(id));

test('a bias of +100 on one token makes greedy output that token', async () => {
  for (const id of [300, 411]) {
    const r = await postJson(`${s.url}/v1/completions`, { prompt: 'Once upon a time', max_tokens: 6, temperature: 0, logprobs: 0, logit_bias: { [id]: 100 } });
    assert.equal(r.status, 200, r.text);
    assert.deepEqual(r.json.choices[0].logprobs.tokens, new Array(6).fill(piece(id)));
  }
});

test('a bias of -100 on the greedy next token changes the text', async () => {
  const plain = await postJson(`${s.url}/v1/completions`, { prompt: 'Once upon a time', max_tokens: 3, temperature: 0, logprobs: 0 });
  assert.ok(STORIES_GREEDY.startsWith(plain.json.choices[0].text));
  const first = plain.json.choices[0].logprobs.tokens[0] as string;
  // Every id with that text (a byte-fallback token can spell it too).
  const ids = [...Array(512).keys()].filter((id) => piece(id) === first);
  const r = await postJson(`${s.url}/v1/completions`, { prompt: 'Once upon a time', max_tokens: 3, temperature: 0, logprobs: 0, logit_bias: Object.fromEntries(ids.map((id) => [id, -100])) });
  assert.notEqual(r.json.choices[0].logprobs.tokens[0], first);
});

test('logit_bias outside the vocabulary or the range is a 400 naming it', async () => {
  for (const bias of [{ 512: 1 }, { 99999: -5 }, { 5: 101 }, { '-1': 1 }, { x: 1 }]) {
    const r = await postJson(`${s.url}/v1/chat/completions`, { messages: [{ role: 'user', content: 'Hi' }], max_tokens: 2, logit_bias: bias });
    assert.equal(r.status, 400, `${JSON.stringify(bias)}: ${r.text}`);
    assert.match(r.json.error.param, /^logit_bias/);
  }
});
