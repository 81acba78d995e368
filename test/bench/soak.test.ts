// The soak in miniature (500 requests; `npm run soak` runs 10,000): against a real `vserve serve`, no
// unexpected result, every accepted request finished (or was ended by the drain with an error event),
// KV pages held by requests back to zero, no server error counted, exit 0 on SIGTERM. Timings and RSS
// are reported by the full soak, never asserted.
import assert from 'node:assert/strict';
import { test } from 'node:test';
import { SOAK_DEFAULTS, runSoak, soakViolations } from '../../bench/soak.js';

test('soak: 500 mixed requests with aborts, slow readers, bad bodies, 429s and a SIGTERM keep every invariant', { timeout: 180_000 }, async () => {
  const report = await runSoak({ ...SOAK_DEFAULTS, requests: 500, maxMinutes: 2 });
  assert.deepEqual(soakViolations(report), []);
  assert.equal(report.requestsSent, 500);
  const o = report.outcomes;
  assert.equal(o.finished + o.rejected + o.aborted + o.drained + o.unexpected, 500);
  // The mix did what it is for: requests finished, were refused and were aborted.
  assert.ok(o.finished > 0 && o.rejected > 0 && o.aborted > 0, JSON.stringify(o));
  assert.equal(report.drain.outcomes.finished + report.drain.outcomes.drained + report.drain.outcomes.rejected, SOAK_DEFAULTS.finalStreams);
});
