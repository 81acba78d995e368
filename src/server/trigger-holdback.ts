// Streaming text that may turn into a tool call: text goes out as it comes, except a tail that could be
// the start of the trigger (the opening tag may arrive over several deltas), which waits until the next
// text shows it is not. From the trigger on, nothing goes out: the rest is read once the reply is whole.
export class TriggerHoldback {
  private pending = '';
  private seen = false;

  constructor(private readonly trigger: string) {}

  /** True once the trigger has appeared. */
  get triggered(): boolean {
    return this.seen;
  }

  /** Takes the next text; returns what can be sent now. */
  push(text: string): string {
    if (this.seen) return '';
    const all = this.pending + text;
    const at = all.indexOf(this.trigger);
    if (at >= 0) {
      this.seen = true;
      this.pending = '';
      return all.slice(0, at);
    }
    const keep = this.partialTriggerAtEnd(all);
    this.pending = all.slice(all.length - keep);
    return all.slice(0, all.length - keep);
  }

  /** The text held back at the end of a reply that never wrote the trigger. */
  flush(): string {
    const rest = this.pending;
    this.pending = '';
    return rest;
  }

  /** The length of the longest end of `text` that begins the trigger. */
  private partialTriggerAtEnd(text: string): number {
    for (let n = Math.min(this.trigger.length - 1, text.length); n > 0; n--) {
      if (this.trigger.startsWith(text.slice(text.length - n))) return n;
    }
    return 0;
  }
}
