// Liveness of Redis connections that the clients' own timers cannot judge. A host that vanished without
// closing the connection looks, to TCP, like one that is merely quiet; a socket idle timer never fires
// while the tier's calls keep writing. So each connection gets a PING with a deadline of its own.
//
// The tier runs on the engine's thread, where one prefill step holds the event loop for seconds. The next
// turn of the loop runs timers before it reads sockets, so a plain timer would take an answer that sits
// unread in the socket for silence. Time the thread spent busy between two beats therefore does not count,
// and a PING found overdue is judged again only after that turn has read the sockets.

/** One connection's outstanding PING. */
export class PingWatch {
  /** When the outstanding PING was sent, moved on by the busy time since; undefined when none is outstanding. */
  private sentAt: number | undefined;

  constructor(private readonly silentMs: number) {}

  /**
   * One beat: sends a PING when none is outstanding, else counts `busyMs` (the thread's busy time since the
   * last beat) as not waited. When the outstanding PING looks overdue, it is judged again once this turn
   * of the event loop has read the sockets (an answer that arrived while the thread was busy counts), and
   * `silent` is called if it still is.
   */
  beat(now: number, busyMs: number, ping: () => Promise<unknown>, silent: () => void): void {
    if (this.sentAt === undefined) {
      this.sentAt = now;
      const answered = () => (this.sentAt = undefined);
      ping().then(answered, answered);
      return;
    }
    this.sentAt += busyMs;
    if (!this.overdue(now)) return;
    setImmediate(() => {
      if (!this.overdue(Date.now())) return;
      this.reset();
      silent();
    });
  }

  private overdue(now: number): boolean {
    return this.sentAt !== undefined && now - this.sentAt >= this.silentMs;
  }

  /** Forgets the outstanding PING (the connection was dropped or is not ready). */
  reset(): void {
    this.sentAt = undefined;
  }
}

/**
 * A timer that beats every silentMs / 4 and tells each beat how long the thread was busy since the last
 * one (how late the beat came). It keeps no process alive.
 */
export class Heartbeat {
  private readonly timer: NodeJS.Timeout;
  private last = Date.now();

  constructor(silentMs: number, onBeat: (now: number, busyMs: number) => void) {
    const everyMs = Math.max(1, Math.floor(silentMs / 4));
    this.timer = setInterval(() => {
      const now = Date.now();
      const busyMs = Math.max(0, now - this.last - everyMs);
      this.last = now;
      onBeat(now, busyMs);
    }, everyMs);
    this.timer.unref();
  }

  stop(): void {
    clearInterval(this.timer);
  }
}
