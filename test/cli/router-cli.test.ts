// `vserve router` as a user starts it: its help, its one-line errors, and a router in front of a replica
// that needs a key (--replica-api-key) while the router wants its own (--api-key).
import assert from 'node:assert/strict';
import { spawn, spawnSync } from 'node:child_process';
import { join } from 'node:path';
import { after, test } from 'node:test';
import { repoRoot } from '../paths.js';
import { eventually } from '../server/helpers.js';
import { REPLICA_ARGS, startReplica, stopReplicas } from '../router/replica-process.js';

const main = join(repoRoot, 'dist', 'src', 'cli', 'main.js');
const vserve = (args: string[]) => spawnSync(process.execPath, [main, ...args], { encoding: 'utf8' });

after(() => stopReplicas());

test('router --help lists its flags; vserve --help lists the command', () => {
  const help = vserve(['router', '--help']);
  assert.equal(help.status, 0);
  for (const flag of ['--replica URL', '--policy NAME', '--overlap-weight W', '--replica-api-key KEY', '--health-interval S', '--blend-separator TEXT', '--port N']) assert.ok(help.stdout.includes(flag), flag);
  assert.match(vserve(['--help']).stdout, /^\s+router\s+one OpenAI endpoint over several serve replicas/m);
});

test('router errors are one clear line', () => {
  const cases: [string[], RegExp][] = [
    [['router'], /^vserve: router needs at least one --replica URL/],
    [['router', '--replica', 'http://127.0.0.1:1/v1'], /must be the server's base URL \(http:\/\/HOST:PORT\), without a path such as \/v1/],
    [['router', '--replica', 'ftp://x'], /must be an http:\/\/ or https:\/\/ URL/],
    [['router', '--replica', 'http://a:1', '--replica', 'http://a:1/'], /replica http:\/\/a:1 is given twice/],
    [['router', '--replica', 'http://a:1', '--policy', 'random'], /--policy must be prefix, round-robin or least-loaded, got "random"/],
    [['router', '--replica', 'http://a:1', '--overlap-weight', '-2'], /--overlap-weight must be a number >= 0, got "-2"/],
    [['router', '--replica', 'http://a:1', '--health-interval', '0'], /--health-interval must be a number of seconds > 0/],
    [['router', '--replica', 'http://a:1', '-m', 'nope.gguf'], /nope\.gguf: cannot open/],
    [['router', '--replica', 'http://a:1', '--blend-separator', ''], /^vserve: --blend-separator must be a non-empty string, got ""/],
  ];
  for (const [args, pattern] of cases) {
    const r = vserve(args);
    assert.equal(r.status, 1, args.join(' '));
    assert.match(r.stderr, pattern, args.join(' '));
    assert.equal(r.stderr.trim().split('\n').length, 1, r.stderr);
  }
});

test('a router started from the command line serves through a replica that needs a key', async () => {
  const replica = await startReplica({ args: [...REPLICA_ARGS, '--api-key', 'replica-key'] });
  const child = spawn(process.execPath, [main, 'router', '--replica', replica.url, '--replica-api-key', 'replica-key', '--api-key', 'router-key', '--port', '0', '--health-interval', '0.2'], { stdio: ['ignore', 'pipe', 'pipe'] });
  let out = '';
  child.stdout.setEncoding('utf8').on('data', (d: string) => (out += d));
  child.stderr.setEncoding('utf8').on('data', (d: string) => (out += d));
  try {
    await eventually(async () => /OpenAI API: \S+\/v1/.test(out) && out.includes(`replica ${replica.url}: up`), 'the router banner and the replica up', 400);
    assert.match(out, /prefix routing over 1 replica \(http:\/\/127\.0\.0\.1:\d+\)/);
    const url = /OpenAI API: (\S+)\/v1/.exec(out)![1]!;
    const body = JSON.stringify({ messages: [{ role: 'user', content: 'Tell me a story' }], max_tokens: 4 });
    const post = (key?: string) => fetch(`${url}/v1/chat/completions`, { method: 'POST', headers: { 'content-type': 'application/json', ...(key ? { authorization: `Bearer ${key}` } : {}) }, body });
    assert.equal((await post()).status, 401);
    // The replica's block stream needs its key too: with it, the router mirrors its cache.
    await eventually(async () => ((await (await fetch(`${url}/health`)).json()) as { replicas: { takesRequests: boolean }[] }).replicas[0]!.takesRequests, 'the replica taking requests');
    const ok = await post('router-key');
    assert.equal(ok.status, 200, await ok.clone().text());
    assert.ok(((await ok.json()) as { choices: { message: { content: string } }[] }).choices[0]!.message.content.length > 0);
    await eventually(async () => /^vserve:router_replica_cached_blocks\{[^}]*\} [1-9]/m.test(await (await fetch(`${url}/metrics`)).text()), 'the replica\'s blocks mirrored');
    assert.ok(!/block events: .*401/.test(out), out);
  } finally {
    child.kill('SIGTERM');
    await new Promise((resolve) => child.once('exit', resolve));
  }
  assert.match(out, /vserve router: SIGTERM: stopping\nvserve router: stopped/);
});
