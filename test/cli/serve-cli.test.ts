// `vserve serve` as a user starts it: the banner names the ISA and threads, the sample curl it prints
// works when pasted into a shell (with --api-key it carries the key), and --log prints one line per request.
import assert from 'node:assert/strict';
import { execFileSync, spawn, spawnSync } from 'node:child_process';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { test } from 'node:test';
import { bundledModel, repoRoot } from '../paths.js';

const hasCurl = spawnSync('curl', ['--version']).status === 0;

/** Resolves with everything the child has printed once `pattern` matches it. */
function waitForOutput(child: ReturnType<typeof spawn>, pattern: RegExp, seen: { text: string }): Promise<string> {
  return new Promise((resolve, reject) => {
    const check = () => (pattern.test(seen.text) ? resolve(seen.text) : undefined);
    child.stdout!.on('data', check);
    child.once('exit', (code) => reject(new Error(`serve exited (${code}): ${seen.text}`)));
    check();
  });
}

test('serve: the printed curl works as printed with --api-key, and --log logs it', { skip: hasCurl ? false : 'curl is not installed (apt-get install curl)' }, async () => {
  const key = "k'ey";
  // The model as a bare path, from a folder that is not the repository.
  const child = spawn(process.execPath, [join(repoRoot, 'bin', 'vserve'), 'serve', bundledModel, '--port', '0', '--api-key', key, '--log'], { cwd: tmpdir(), stdio: ['ignore', 'pipe', 'pipe'] });
  const seen = { text: '' };
  child.stdout.setEncoding('utf8').on('data', (d: string) => (seen.text += d));
  try {
    const banner = await waitForOutput(child, /-d '.*'\n/, seen);
    assert.match(banner, /serving stories260K .*(portable|avx2|avx512|avx512-amx|avx512-amx-bf16|neon) kernels on \d+ threads/);
    // The sample is the lines from "curl" to the -d line, joined where the shell would join them.
    const sample = banner.slice(banner.indexOf('curl ')).split(/\n(?!\s)/)[0]!.replace(/\\\n\s*/g, '');
    const reply = JSON.parse(execFileSync('bash', ['-c', sample], { encoding: 'utf8', stdio: ['ignore', 'pipe', 'ignore'] })) as { choices?: { message: { content: string } }[] };
    assert.ok(reply.choices?.[0]?.message.content, JSON.stringify(reply));
    const url = /OpenAI API:\s+(\S+)\/v1/.exec(banner)![1]!;
    assert.equal((await fetch(`${url}/v1/models`)).status, 401, 'the key is required, so the header is what made the sample work');
    await waitForOutput(child, /GET \/v1\/models 401 /, seen);
    const lines = seen.text.split('\n').filter((l) => / \/v1\//.test(l) && !l.includes('curl'));
    assert.equal(lines.length, 2, seen.text);
    assert.match(lines[0]!, /^\S+Z \S+ POST \/v1\/chat\/completions 200 [\d.]+ms$/);
  } finally {
    child.kill('SIGTERM');
  }
});
