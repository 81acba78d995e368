// The CLI as a user runs it: bin/vserve in a child process.
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { mkdtempSync, readFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { test } from 'node:test';
import { GGUFFile } from '../../src/model/gguf/reader.js';
import { GGMLType } from '../../src/model/gguf/types.js';
import { GGUFWriter, inferTyped } from '../../src/model/gguf/writer.js';
import { bundledModel, repoRoot, STORIES_GREEDY } from '../paths.js';

function vserve(args: string[], input?: string, opts: { cwd?: string; env?: Record<string, string> } = {}) {
  const r = spawnSync(process.execPath, [join(repoRoot, 'bin', 'vserve'), ...args], {
    cwd: opts.cwd ?? repoRoot,
    env: { ...process.env, ...opts.env },
    input,
    encoding: 'utf8',
    timeout: 120_000,
  });
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
  for (const k of ['load_ms', 'ttft_ms', 'prefill_tok_s', 'decode_tok_s']) assert.ok(typeof stats[k] === 'number' && stats[k] > 0, k);
});

test('run: the default model is found from any folder, and a bare model path works', () => {
  // As after `npm link`: the current folder is not the repository.
  const r = vserve(['run', '-p', 'Once upon a time', '-n', '20', '--temp', '0'], undefined, { cwd: tmpdir() });
  assert.equal(r.code, 0, r.stderr);
  const bare = vserve(['run', bundledModel, '-p', 'Once upon a time', '-n', '20', '--temp', '0'], undefined, { cwd: tmpdir() });
  assert.equal(bare.code, 0, bare.stderr);
  assert.equal(r.stdout, bare.stdout);
  assert.ok(r.stdout.length > 40 && STORIES_GREEDY.startsWith(r.stdout.replace(/\n$/, '')), r.stdout);
});

test('run: -n -1 generates until the context is full; --stats names the ISA and threads', () => {
  const r = vserve(['run', '-p', 'Once upon a time', '-n', '-1', '--temp', '0', '--stats']);
  assert.equal(r.code, 0, r.stderr);
  assert.ok(r.stdout.startsWith(STORIES_GREEDY), r.stdout.slice(0, 300));
  const stats = JSON.parse(r.stderr.trim().split('\n').at(-1)!);
  // The bundled model's context is 512 tokens; BOS + the prompt take 5.
  assert.equal(stats.completion_tokens, 512 - 5);
  assert.equal(stats.finish_reason, 'length');
  assert.match(stats.isa, /^(portable|avx2|avx512|avx512-amx|avx512-amx-bf16|neon)$/);
  assert.ok(Number.isInteger(stats.threads) && stats.threads >= 1);
  const forced = vserve(['run', '-p', 'x', '-n', '1', '--stats'], undefined, { env: { VSERVE_ISA: 'portable', VSERVE_THREADS: '1' } });
  assert.equal(forced.code, 0, forced.stderr);
  assert.deepEqual([JSON.parse(forced.stderr.trim()).isa, JSON.parse(forced.stderr.trim()).threads], ['portable', 1]);
});

test('run --chat and --system: the prompt goes through the chat template (the documented fallback format for this model)', () => {
  const greedy = ['-n', '30', '--temp', '0'];
  const chat = vserve(['run', '--chat', '-p', 'Hello', ...greedy]);
  const raw = vserve(['run', '-p', 'User: Hello\n\nAssistant:', ...greedy]);
  assert.equal(chat.code, 0, chat.stderr);
  assert.equal(chat.stdout, raw.stdout);
  const system = vserve(['run', '--system', 'You tell stories.', '-p', 'Hello', ...greedy]);
  const rawSystem = vserve(['run', '-p', 'System: You tell stories.\n\nUser: Hello\n\nAssistant:', ...greedy]);
  assert.equal(system.code, 0, system.stderr);
  assert.equal(system.stdout, rawSystem.stdout);
  assert.notEqual(system.stdout, chat.stdout);
});

test('vserve: --version, bare vserve is an error that shows the help, bench --help succeeds', () => {
  const version = vserve(['--version']);
  assert.equal(version.code, 0);
  assert.equal(version.stdout.split(' ')[1], JSON.parse(readFileSync(join(repoRoot, 'package.json'), 'utf8')).version);
  const bare = vserve([]);
  assert.equal(bare.code, 1);
  assert.match(bare.stderr, /usage: vserve <command>[\s\S]*chat/);
  const bench = vserve(['bench', '--help']);
  assert.equal(bench.code, 0, bench.stderr);
  assert.match(bench.stdout, /--url URL/);
});

test('an unknown option is named, with the nearest known one, and nothing runs', () => {
  const typo = vserve(['serve', '--kv-memroy', '1GiB']);
  assert.equal(typo.code, 1);
  assert.match(typo.stderr, /unknown option --kv-memroy \(did you mean --kv-memory\?\); --help lists the options/);
  const foreign = vserve(['run', '-p', 'hi', '--max-seqs', '2']);
  assert.equal(foreign.code, 1);
  assert.match(foreign.stderr, /unknown option --max-seqs;/);
  assert.equal(foreign.stdout, '');
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
  const text = vserve(['inspect', '-m', bundledModel]);
  assert.match(text.stdout, /architecture\s+llama/);
  // The f32 epsilon in its shortest form, not as the double it widens to.
  assert.match(text.stdout, /layer_norm_rms_epsilon\s+0\.00001\n/);
  assert.equal(info.hyperparameters['attention.layer_norm_rms_epsilon'], 1e-5);
  assert.equal(info.runs, true);
  assert.deepEqual(info.problems, []);
  assert.match(text.stdout, /runs\s+yes/);
});

test('inspect: a file vserve cannot run says why (architecture, weight type, tokenizer)', () => {
  const src = GGUFFile.open(bundledModel);
  const w = new GGUFWriter();
  for (const [key, value] of src.metadata) {
    if (key === 'general.architecture') w.setString(key, 'nonesuch');
    else if (key === 'tokenizer.ggml.model') w.setString(key, 'unigram-xyz');
    else if (!key.startsWith('general.alignment')) w.set(key, inferTyped(value));
  }
  src.close();
  w.addTensor('token_embd.weight', [32, 512], GGMLType.Q8_1);
  const path = join(mkdtempSync(join(tmpdir(), 'vserve-inspect-')), 'odd.gguf');
  w.writeFile(path, (t) => [new Uint8Array(t.nBytes)]);
  const r = vserve(['inspect', path, '--json']);
  assert.equal(r.code, 0, r.stderr);
  const info = JSON.parse(r.stdout);
  assert.equal(info.runs, false);
  assert.equal(info.problems.length, 3, info.problems.join('\n'));
  assert.match(info.problems[0], /^architecture: unsupported architecture "nonesuch" \(supported: llama, qwen2/);
  assert.match(info.problems[1], /^weight type: Q8_1 is not supported \(1 tensor: token_embd.weight\); supported: F32, F16/);
  assert.match(info.problems[2], /^tokenizer: .*unigram-xyz/);
  assert.match(vserve(['inspect', path]).stdout, /runs\s+no\n\s+architecture: unsupported/);
});

test('errors are one clear line, not a stack trace', () => {
  const cases: [string[], RegExp][] = [
    [['run', '-m', 'nope.gguf', '-p', 'x'], /nope\.gguf: cannot open/],
    [['run', '-m', bundledModel], /needs a prompt/],
    [['run', '-m', bundledModel, '-p', 'x', '--temp', 'hot'], /--temp must be a number/],
    [['run', '-m', bundledModel, '-p', 'x', '--temp', '-1'], /--temp must be between 0 and 100/],
    [['run', '-p', 'x', '-f', 'prompt.txt'], /-p TEXT or -f FILE, not both/],
    [['run', '-p', 'x', '-n', '-5'], /--max-tokens must be an integer >= -1/],
    [['run', '-p', 'x', '-n', '0'], /--max-tokens must be at least 1, or -1/],
    [['run', '-f', 'no-such-prompt.txt'], /cannot read the prompt file no-such-prompt\.txt: no such file/],
    [['run', '-m', join(repoRoot, 'models'), '-p', 'x'], /models is a folder; pass the GGUF file itself/],
    [['serve', '--port', '0', '--page-size', '1000'], /--page-size must be a multiple of 4 KiB/],
    [['serve', '--port', '0', '--max-seqs', '0'], /--max-seqs must be an integer between 1 and 4096/],
    [['serve', '--port', '0', '--max-batch-tokens', '-3'], /--max-batch-tokens must be an integer of at least 1, got -3/],
    [['serve', '--port', '0', '--kv-policy', 'lru'], /--kv-policy must be none, sinks, h2o, tova, snapkv, chunkkv or pyramidkv, got "lru"/],
    [['serve', '--port', '0', '--kv-budget', '2.5'], /--kv-budget must be a whole number of tokens or a fraction between 0 and 1, got "2.5"/],
    [['serve', '--port', '0', '--kv-policy', 'h2o', '--kv-budget', '8'], /--kv-budget must be a whole number of tokens \(at least 16\)/],
    [['serve', '--port', '0', '--kv-memory', '64K'], /--kv-memory holds \d+ pages.*raise --kv-memory or lower --max-context/],
    [['serve', '--port', '0', '--blend-separator', ''], /--blend-separator must be a non-empty string, got ""/],
    [['run', '-m', bundledModel, '-p', 'x'.repeat(3000)], /prompt has \d+ tokens; the context holds 512/],
    [['inspect', join(repoRoot, 'package.json')], /not a GGUF file: bad magic/],
    [['frobnicate'], /unknown command "frobnicate"/],
    [['tokenize', '-m', bundledModel, '--decode', 'x'], /JSON array/],
  ];
  for (const [args, pattern] of cases) {
    const r = vserve(args);
    assert.equal(r.code, 1, `${args.join(' ')}: exit ${r.code}`);
    assert.match(r.stderr, pattern);
    assert.doesNotMatch(r.stderr, /\n\s+at |internal error/, `${args.join(' ')} printed a stack trace`);
  }
});

test('environment: an unknown VSERVE_ISA lists the valid names; VSERVE_THREADS must be a positive integer', () => {
  const isa = vserve(['run', '-p', 'x', '-n', '1'], undefined, { env: { VSERVE_ISA: 'foo' } });
  assert.equal(isa.code, 1);
  assert.match(isa.stderr, /VSERVE_ISA=foo is not a kernel set vserve knows; valid names: portable, avx2, avx512, avx512-amx, avx512-amx-bf16, neon/);
  assert.doesNotMatch(isa.stderr, /rebuild|build:native/);
  for (const bad of ['0', 'abc', '-2']) {
    const r = vserve(['run', '-p', 'x', '-n', '1'], undefined, { env: { VSERVE_THREADS: bad } });
    assert.equal(r.code, 1, bad);
    assert.match(r.stderr, new RegExp(`VSERVE_THREADS must be a whole number of compute threads from 1 to 1024, got "${bad}"`));
  }
});
