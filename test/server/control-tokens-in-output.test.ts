// Control tokens the model emits are no text: the bundled model, pushed towards BOS by logit_bias,
// emits <s> mid-story, and neither the engine's text, the API's text (plain and streamed) nor the
// logprobs' token strings show it (as llama-server without --special).
import assert from 'node:assert/strict';
import { after, before, test } from 'node:test';
import { generate } from '../../src/engine/generate.js';
import { tinyModel } from '../engine/engine-helpers.js';
import { postJson, startServer, type TestServer } from './helpers.js';

// Sampling that makes the model emit BOS once mid-story and then start a new story (found by trying;
// greedy decoding with a bias this size never picks BOS, a larger one picks only BOS once it has).
const TOWARDS_BOS = 10;
const SAMPLING = { temperature: 0.8, seed: 2 };

let s: TestServer;
before(async () => {
  s = await startServer();
});
after(() => s.close());

test('generate(): BOS emitted mid-story adds no text', () => {
  const { model, tokenizer } = tinyModel();
  const bos = tokenizer.bos!;
  const prompt = tokenizer.encode('Once upon a time', { addSpecial: true });
  const it = generate(model, tokenizer, prompt, { ...SAMPLING, maxTokens: 40, logitBias: { [bos]: TOWARDS_BOS } });
  const tokens: number[] = [];
  let text = '';
  for (let r = it.next(); !r.done; r = it.next()) {
    tokens.push(...r.value.tokens);
    text += r.value.text;
  }
  const bosAt = tokens.indexOf(bos);
  assert.ok(bosAt > 0 && tokens.slice(bosAt).some((t) => t !== bos), `BOS between story tokens: ${tokens.join(' ')}`);
  assert.ok(!text.includes('<s>'), text);
  const pieces = Buffer.concat(tokens.map((t) => tokenizer.tokenToPiece(t, false)));
  assert.equal(text, new TextDecoder().decode(pieces), 'the text is the tokens\' pieces as generated');
  assert.ok(tokenizer.decode(tokens).includes('<s>'), 'decode without skipSpecial still shows it');
});

test('the completions API: no <s> in the text, and BOS\'s logprob token string is empty', async () => {
  const body = { prompt: 'Once upon a time', max_tokens: 40, ...SAMPLING, logprobs: 1, logit_bias: { 1: TOWARDS_BOS } };
  const r = await postJson(`${s.url}/v1/completions`, body);
  assert.equal(r.status, 200, r.text);
  const choice = r.json.choices[0];
  assert.ok(!choice.text.includes('<s>'), choice.text);
  const tokens = choice.logprobs.tokens as string[];
  assert.ok(tokens.filter((t) => t === '').length > 0, 'BOS tokens are listed with empty text');
  assert.ok(!tokens.some((t) => t.includes('<s>')));
  for (const top of choice.logprobs.top_logprobs as Record<string, number>[]) assert.ok(!Object.keys(top).some((t) => t.includes('<s>')));
  assert.equal(tokens.join(''), choice.text);
});

test('the chat API, streamed: no <s> in any delta', async () => {
  const res = await fetch(`${s.url}/v1/chat/completions`, {
    method: 'POST',
    headers: { 'content-type': 'application/json' },
    body: JSON.stringify({ messages: [{ role: 'user', content: 'Tell a story' }], max_tokens: 40, ...SAMPLING, stream: true, logit_bias: { 1: TOWARDS_BOS } }),
  });
  assert.equal(res.status, 200);
  const sse = await res.text();
  const content = sse.split('\n').filter((l) => l.startsWith('data: {')).map((l) => JSON.parse(l.slice(6)).choices[0]?.delta?.content ?? '').join('');
  assert.ok(content.length > 0 && !content.includes('<s>'), content);
});
