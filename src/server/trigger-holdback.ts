// Streaming text that may turn into a tool call: text goes out as it comes, except a tail that could be
// the start of the trigger (the opening tag may arrive over several deltas), which waits until the next
// text shows it is not. From the trigger on, nothing goes out: the rest is read once the reply is whole.
// Where calls open only at the reply's start (TriggeredFormat.gap), the blank start waits too, and once
// the text is past it everything goes out as it comes.
export class TriggerHoldback {
  private pending = '';
  private seen = false;
  /** With a gap: whether the text so far is only gap characters, or those and a partial trigger. */
  private atStart = true;

  constructor(
    private readonly trigger: string,
    /** TriggeredFormat.gap: the characters that may come before a call at the start. */
    private readonly gap?: string,
  ) {}

  /** True once the trigger has appeared. */
  get triggered(): boolean {
    return this.seen;
  }

  /** Takes the next text; returns what can be sent now. */
  push(text: string): string {
    if (this.seen) return '';
    const all = this.pending + text;
    if (this.gap !== undefined) return this.pushAtStart(all);
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

  /** Calls only at the start: the gap before a call is layout, never sent; anything else sends all. */
  private pushAtStart(all: string): string {
    if (!this.atStart) return all;
    let lead = 0;
    while (lead < all.length && this.gap!.includes(all[lead]!)) lead++;
    const rest = all.slice(lead);
    if (rest.startsWith(this.trigger)) {
      this.seen = true;
      this.pending = '';
      return '';
    }
    if (this.trigger.startsWith(rest)) {
      this.pending = all;
      return '';
    }
    this.atStart = false;
    this.pending = '';
    return all;
  }

  /** The length of the longest end of `text` that begins the trigger. */
  private partialTriggerAtEnd(text: string): number {
    for (let n = Math.min(this.trigger.length - 1, text.length); n > 0; n--) {
      if (this.trigger.startsWith(text.slice(text.length - n))) return n;
    }
    return 0;
  }
}
