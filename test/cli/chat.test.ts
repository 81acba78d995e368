// `vserve chat` in a real terminal (tmux): answers are the model's greedy continuation of the documented
// fallback chat format, the conversation carries over between turns, /reset forgets it, Ctrl-C stops
// an answer without leaving, and a second Ctrl-C at the prompt leaves.
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { join } from 'node:path';
import { test } from 'node:test';
import { setTimeout as sleep } from 'node:timers/promises';
import { repoRoot } from '../paths.js';

const hasTmux = spawnSync('tmux', ['-V']).status === 0;
// In CI tmux must be there (.ci/run installs it); elsewhere its absence only skips these tests.
const skip = !hasTmux && !process.env.CI ? 'tmux is not installed (apt-get install -y tmux)' : false;
const vserveBin = join(repoRoot, 'bin', 'vserve');

/** What `vserve run` prints for a prompt given as plain text (the truth the chat is held to). */
function runText(prompt: string, args: string[]): string {
  const r = spawnSync(process.execPath, [vserveBin, 'run', '-p', prompt, ...args], { encoding: 'utf8' });
  assert.equal(r.status, 0, r.stderr);
  return r.stdout.replace(/\n$/, '');
}

/** One `vserve chat` in a tmux server of its own, so no user session is touched. */
class ChatPane {
  private readonly socket = `vserve-test-${process.pid}-${Math.random().toString(36).slice(2)}`;

  constructor(args: string[]) {
    assert.ok(hasTmux, 'tmux is not installed (apt-get install -y tmux); CI needs it for this test');
    // The exit status is printed after vserve ends, and the pane stays for the test to read it.
    const command = `${process.execPath} ${vserveBin} chat ${args.map((a) => `'${a}'`).join(' ')}; echo "[exited $?]"; sleep 600`;
    this.tmux('-f', '/dev/null', 'new-session', '-d', '-s', 'chat', '-x', '200', '-y', '50', '-c', repoRoot, command);
  }

  tmux(...args: string[]): string {
    const r = spawnSync('tmux', ['-L', this.socket, ...args], { encoding: 'utf8' });
    assert.equal(r.status, 0, `tmux ${args.join(' ')}: ${r.stderr}`);
    return r.stdout;
  }

  screen(): string {
    return this.tmux('capture-pane', '-p', '-J', '-S', '-1000', '-t', 'chat').replace(/\s+$/, '');
  }

  type(text: string): void {
    this.tmux('send-keys', '-t', 'chat', '-l', text);
    this.tmux('send-keys', '-t', 'chat', 'Enter');
  }

  ctrlC(): void {
    this.tmux('send-keys', '-t', 'chat', 'C-c');
  }

  /** Polls the screen until `done` holds; the deadline only stops a hung test. */
  async waitFor(done: (screen: string) => boolean, what: string): Promise<string> {
    for (let i = 0; i < 1200; i++) {
      const s = this.screen();
      if (done(s)) return s;
      await sleep(50);
    }
    throw new Error(`gave up waiting for ${what}; the screen:\n${this.screen()}`);
  }

  close(): void {
    spawnSync('tmux', ['-L', this.socket, 'kill-server']);
  }
}

const atPrompt = (s: string) => s.endsWith('\n>');

test('chat: greedy answers follow the chat template, keep the conversation, /reset forgets it, /exit leaves', { skip, timeout: 120_000 }, async () => {
  const sampling = ['-n', '30', '--temp', '0'];
  const system = 'You tell stories.';
  const first = runText(`System: ${system}\n\nUser: Hello\n\nAssistant:`, sampling);
  const second = runText(`System: ${system}\n\nUser: Hello\n\nAssistant: ${first.trim()}\n\nUser: And then?\n\nAssistant:`, sampling);
  const pane = new ChatPane(['--system', system, ...sampling]);
  try {
    await pane.waitFor(atPrompt, 'the first prompt');
    pane.type('Hello');
    let s = await pane.waitFor((x) => atPrompt(x) && x.includes('> Hello\n'), 'the first answer');
    assert.ok(s.endsWith(`> Hello\n${first}\n>`), s);
    pane.type('And then?');
    s = await pane.waitFor((x) => atPrompt(x) && x.includes('> And then?\n'), 'the second answer');
    assert.ok(s.endsWith(`> And then?\n${second}\n>`), s);
    pane.type('/reset');
    await pane.waitFor((x) => atPrompt(x) && x.includes('(new conversation)'), '/reset');
    pane.type('Hello');
    s = await pane.waitFor((x) => atPrompt(x) && x.endsWith(`(new conversation)\n> Hello\n${first}\n>`), 'the answer after /reset');
    pane.type('/exit');
    await pane.waitFor((x) => x.includes('[exited 0]'), 'the exit');
  } finally {
    pane.close();
  }
});

test('chat: Ctrl-C stops the answer and keeps the chat; a second Ctrl-C at the prompt leaves', { skip, timeout: 120_000 }, async () => {
  // An answer until the context is full, on the slow TypeScript backend: long enough to interrupt.
  const args = ['-n', '-1', '--temp', '0', '--backend', 'reference'];
  const full = runText('User: Hello\n\nAssistant:', args);
  const pane = new ChatPane(args);
  try {
    await pane.waitFor(atPrompt, 'the first prompt');
    pane.type('Hello');
    await pane.waitFor((x) => x.split('> Hello\n')[1]?.trim() !== undefined && x.split('> Hello\n')[1]!.trim().length > 0, 'the answer to start');
    pane.ctrlC();
    const s = await pane.waitFor((x) => atPrompt(x) && x.includes(' (stopped)'), 'the stopped answer');
    const partial = s.split('> Hello\n')[1]!.split(' (stopped)')[0]!;
    assert.ok(partial.length > 0 && partial.length < full.length && full.startsWith(partial), `stopped answer: ${JSON.stringify(partial)}`);
    pane.ctrlC();
    await pane.waitFor((x) => atPrompt(x) && x.includes('(Ctrl-C again, /exit or Ctrl-D to quit)'), 'the hint at the prompt');
    pane.type('/reset');
    await pane.waitFor((x) => atPrompt(x) && x.includes('(new conversation)'), 'the chat to go on');
    pane.ctrlC();
    await pane.waitFor((x) => x.endsWith('(Ctrl-C again, /exit or Ctrl-D to quit)\n>'), 'the hint again');
    pane.ctrlC();
    await pane.waitFor((x) => x.includes('[exited 0]'), 'the exit');
  } finally {
    pane.close();
  }
});
