// The CLI as a user runs it: bin/vserve in a child process.
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { join } from 'node:path';
import { test } from 'node:test';
import { bundledModel, repoRoot, STORIES_GREEDY } from '../paths.js';

function vserve(args: string[], input?: string) {
  const r = spawnSync(process.execPath, [join(repoRoot, 'bin', 'vserve'), ...args], { cwd: repoRoot, input, encoding: 'utf8', timeout: 120_000 });
  return { code: r.status, stdout: r.stdout, stderr: r.stderr };
}

test('run: greedy continuation of the bundled model streams the known text', () => {
  const r = vserve(['run', '-m', 'models/stories260K.gguf', '-p', 'Once upon a time', '-n', '60', '--temp', '0', '--stats']);
  assert.equal(r.code, 0, r.stderr);
  const text = r.stdout.replace(/\n$/, '');
  assert.ok(text.length > 150 && STORIES_GREEDY.startsWith(text), `got: ${JSON.stringify(text)}`);
  const stats = JSON.parse(r.stderr.trim().split('\n').at(-1)!);
  assert.equal(stats.prompt_tokens, 5);
  assert.equal(stats.completion_tokens, 60);
  for (const k of ['ttft_ms', 'prefill_tok_s', 'decode_tok_s']) assert.ok(typeof stats[k] === 'number' && stats[k] > 0, k);
});

test('run: the same seed gives the same sample, and sampling is not greedy', () => {
  const args = ['run', '-m', bundledModel, '-p', 'Once upon a time', '-n', '40', '--temp', '1.0', '--top-k', '0', '--top-p', '1', '--min-p', '0'];
  const a = vserve([...args, '--seed', '11']);
  const b = vserve([...args, '--seed', '11']);
  const c = vserve([...args, '--seed', '12']);
  assert.equal(a.code, 0, a.stderr);
  assert.equal(a.stdout, b.stdout);
  assert.notEqual(a.stdout, c.stdout);
});

test('run: --stop ends the text before the stop string', () => {
  const r = vserve(['run', '-m', bundledModel, '-p', 'Once upon a time', '-n', '60', '--temp', '0', '--stop', 'Lily']);
  assert.equal(r.code, 0, r.stderr);
  assert.equal(r.stdout, ', there was a little girl named \n');
});

test('tokenize: text, BOS, JSON lines and decode', () => {
  const plain = vserve(['tokenize', '-m', bundledModel, '--text', 'Once upon a time']);
  assert.equal(plain.code, 0, plain.stderr);
  assert.deepEqual(JSON.parse(plain.stdout), [403, 407, 261, 378]);
  const bos = vserve(['tokenize', '-m', bundledModel, '--text', 'Once upon a time', '--bos']);
  assert.deepEqual(JSON.parse(bos.stdout), [1, 403, 407, 261, 378]);
  const lines = vserve(['tokenize', '-m', bundledModel, '--jsonl'], '"Once upon a time"\n"Lily"\n');
  assert.deepEqual(lines.stdout.trim().split('\n').map((l) => JSON.parse(l)), [[403, 407, 261, 378], JSON.parse(vserve(['tokenize', '-m', bundledModel, '--text', 'Lily']).stdout)]);
  const dec = vserve(['tokenize', '-m', bundledModel, '--decode', '[403, 407, 261, 378]']);
  assert.equal(dec.stdout, 'Once upon a time\n');
});

test('inspect: architecture, hyperparameters, tokenizer and tensors', () => {
  const r = vserve(['inspect', bundledModel, '--json']);
  assert.equal(r.code, 0, r.stderr);
  const info = JSON.parse(r.stdout);
  assert.equal(info.architecture, 'llama');
  assert.equal(info.hyperparameters.block_count, 5);
  assert.equal(info.contextLength, 512);
  assert.equal(info.tokenizer.kind, 'llama');
  assert.equal(info.tokenizer.size, 512);
  assert.equal(info.tensors.count, 47);
  assert.equal(info.tensors.byType.F32.count, 47);
  const text = vserve(['inspect', bundledModel]);
  assert.match(text.stdout, /architecture\s+llama/);
});

test('errors are one clear line, not a stack trace', () => {
  const cases: [string[], RegExp][] = [
    [['run', '-m', 'nope.gguf', '-p', 'x'], /nope\.gguf: cannot open/],
    [['run', '-m', bundledModel], /needs a prompt/],
    [['run', '-m', bundledModel, '-p', 'x', '--temp', 'hot'], /--temp must be a number/],
    [['run', '-m', bundledModel, '-p', 'x', '--temp=-1'], /temperature must be between 0 and 100/],
    [['run', '-m', bundledModel, '-p', 'x'.repeat(3000)], /prompt has \d+ tokens; the context holds 512/],
    [['inspect', join(repoRoot, 'package.json')], /not a GGUF file: bad magic/],
    [['frobnicate'], /unknown command "frobnicate"/],
    [['tokenize', '-m', bundledModel, '--decode', 'x'], /JSON array/],
  ];
  for (const [args, pattern] of cases) {
    const r = vserve(args);
    assert.equal(r.code, 1, `${args.join(' ')}: exit ${r.code}`);
    assert.match(r.stderr, pattern);
    assert.doesNotMatch(r.stderr, /\n\s+at /, `${args.join(' ')} printed a stack trace`);
  }
});
