import assert from 'node:assert/strict';
import { test } from 'node:test';
import { StopMatcher } from '../../src/engine/stop-matcher.js';

function run(stops: string[], pieces: string[]): { emitted: string[]; stopped: boolean; rest: string } {
  const m = new StopMatcher(stops);
  const emitted: string[] = [];
  let stopped = false;
  for (const p of pieces) {
    const r = m.push(p);
    emitted.push(r.text);
    if (r.stopped) { stopped = true; break; }
  }
  return { emitted, stopped, rest: m.flush() };
}

test('a stop string split across pieces is found, and nothing of it is emitted', () => {
  const r = run(['END'], ['Hello E', 'N', 'D and more']);
  assert.equal(r.stopped, true);
  assert.equal(r.emitted.join(''), 'Hello ');
  // While "E" might start the stop string it is held back.
  assert.equal(r.emitted[0], 'Hello ');
});

test('held-back text that turns out not to be a stop string is released', () => {
  const r = run(['END'], ['Hello E', 'X', 'tra']);
  assert.equal(r.stopped, false);
  assert.equal(r.emitted.join('') + r.rest, 'Hello EXtra');
});

test('the earliest of several stop strings wins', () => {
  const r = run(['\n\n', 'Lily'], ['She said', ' Lily\n\nx']);
  assert.equal(r.emitted.join(''), 'She said ');
});

test('text held back at the end is flushed', () => {
  const r = run(['###'], ['abc#', '#']);
  assert.equal(r.stopped, false);
  assert.equal(r.emitted.join(''), 'abc');
  assert.equal(r.rest, '##');
});

test('empty stop strings are refused', () => {
  assert.throws(() => new StopMatcher(['']), /must not be empty/);
});
