// Stop strings can straddle token boundaries, so generated text is held back while its tail could
// still be the beginning of a stop string; everything before that is safe to stream.
import { RequestFaultError } from './error-kind.js';

export class StopMatcher {
  private pending = '';
  private stopped = false;

  constructor(private readonly stops: readonly string[]) {
    for (const s of stops) if (s.length === 0) throw new RequestFaultError('stop strings must not be empty', 'invalid_value', 'stop');
  }

  get done(): boolean {
    return this.stopped;
  }

  /** Feeds new text; returns what can be emitted now and whether a stop string was hit. */
  push(text: string): { text: string; stopped: boolean } {
    if (this.stopped) return { text: '', stopped: true };
    this.pending += text;
    let cut = -1;
    for (const s of this.stops) {
      const at = this.pending.indexOf(s);
      if (at >= 0 && (cut < 0 || at < cut)) cut = at;
    }
    if (cut >= 0) {
      this.stopped = true;
      const out = this.pending.slice(0, cut);
      this.pending = '';
      return { text: out, stopped: true };
    }
    const hold = this.heldBackLength();
    const out = this.pending.slice(0, this.pending.length - hold);
    this.pending = this.pending.slice(this.pending.length - hold);
    return { text: out, stopped: false };
  }

  /** The text still held back (emitted when generation ends for another reason). */
  flush(): string {
    const out = this.stopped ? '' : this.pending;
    this.pending = '';
    return out;
  }

  /** Longest suffix of the pending text that is a proper prefix of some stop string. */
  private heldBackLength(): number {
    let hold = 0;
    for (const s of this.stops) {
      for (let k = Math.min(s.length - 1, this.pending.length); k > hold; k--) {
        if (this.pending.endsWith(s.slice(0, k))) { hold = k; break; }
      }
    }
    return hold;
  }
}
