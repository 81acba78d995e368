// Small statistics for benchmark samples.

export function median(xs: readonly number[]): number {
  if (xs.length === 0) return NaN;
  const s = [...xs].sort((a, b) => a - b);
  const m = s.length >> 1;
  return s.length % 2 ? s[m]! : (s[m - 1]! + s[m]!) / 2;
}

/** Rounds for reports: enough significant digits to compare, not more. */
export function round(x: number, digits = 3): number {
  if (!Number.isFinite(x) || x === 0) return x;
  const scale = 10 ** Math.max(0, digits - 1 - Math.floor(Math.log10(Math.abs(x))));
  return Math.round(x * scale) / scale;
}

/** The p-th percentile (0..100) by linear interpolation between closest ranks. */
export function percentile(xs: readonly number[], p: number): number {
  if (xs.length === 0) return NaN;
  const s = [...xs].sort((a, b) => a - b);
  const at = (p / 100) * (s.length - 1);
  const lo = Math.floor(at);
  return s[lo]! + (s[Math.min(lo + 1, s.length - 1)]! - s[lo]!) * (at - lo);
}

/** "median [min–max]" of a few samples for report cells ("—" for none, the value alone for one). */
export function medianRange(xs: readonly number[]): string {
  if (xs.length === 0) return '—';
  const m = round(median(xs));
  return xs.length === 1 ? `${m}` : `${m} [${round(Math.min(...xs))}–${round(Math.max(...xs))}]`;
}
