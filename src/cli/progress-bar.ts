// A byte-count progress bar on stderr: redrawn in place on a terminal, a line per 10% otherwise
// (so logs stay readable).

const MB = 1e6;

export class ProgressBar {
  private done = 0;
  private readonly start = performance.now();
  private lastDraw = 0;
  private lastTenth = -1;
  private readonly tty = process.stderr.isTTY === true;

  constructor(private readonly label: string, private readonly total: number, private readonly enabled = true) {}

  add(bytes: number): void {
    this.done += bytes;
    if (!this.enabled) return;
    const now = performance.now();
    if (this.tty) {
      if (now - this.lastDraw > 100) {
        this.lastDraw = now;
        process.stderr.write(`\r${this.line(now)}`);
      }
    } else {
      const tenth = Math.floor((this.done / this.total) * 10);
      if (tenth > this.lastTenth && tenth < 10) {
        this.lastTenth = tenth;
        process.stderr.write(`${this.line(now)}\n`);
      }
    }
  }

  finish(): void {
    if (!this.enabled) return;
    const line = this.line(performance.now());
    process.stderr.write(this.tty ? `\r${line}\n` : `${line}\n`);
  }

  private line(now: number): string {
    const frac = this.total > 0 ? Math.min(1, this.done / this.total) : 1;
    const width = 30;
    const filled = Math.round(frac * width);
    const secs = (now - this.start) / 1000;
    const rate = secs > 0 ? this.done / MB / secs : 0;
    return `${this.label} [${'#'.repeat(filled)}${'.'.repeat(width - filled)}] ${(frac * 100).toFixed(0).padStart(3)}% ` +
      `${(this.done / MB).toFixed(0)}/${(this.total / MB).toFixed(0)} MB ${rate.toFixed(0)} MB/s`;
  }
}
