// Options objects are checked for keys nobody reads: `kvManagr: 'paged'` or `max_tokens: 5` would
// otherwise be ignored without a word and the engine would run with defaults the caller did not want.

/** Edit distance between two short names (insertions, deletions, substitutions). */
function distance(a: string, b: string): number {
  const row = Array.from({ length: b.length + 1 }, (_, j) => j);
  for (let i = 1; i <= a.length; i++) {
    let diagonal = row[0]!;
    row[0] = i;
    for (let j = 1; j <= b.length; j++) {
      const above = row[j]!;
      row[j] = Math.min(row[j]! + 1, row[j - 1]! + 1, diagonal + (a[i - 1] === b[j - 1] ? 0 : 1));
      diagonal = above;
    }
  }
  return row[b.length]!;
}

/** The known name closest to `name` (case and snake_case forgiven), if any is close enough to be a typo. */
export function nearestName(name: string, known: readonly string[]): string | undefined {
  const plain = (s: string) => s.toLowerCase().replaceAll('_', '');
  let best: string | undefined;
  let bestDistance = Infinity;
  for (const k of known) {
    const d = distance(plain(name), plain(k));
    if (d < bestDistance) [best, bestDistance] = [k, d];
  }
  return bestDistance <= Math.max(2, Math.floor(name.length / 3)) ? best : undefined;
}

/** Throws `error(message)` naming the first key of `options` that is not in `known`, with the nearest known one. */
export function checkKnownKeys(what: string, options: object, known: readonly string[], error: (message: string) => Error): void {
  for (const key of Object.keys(options)) {
    if (known.includes(key)) continue;
    const near = nearestName(key, known);
    throw error(`unknown ${what} "${key}"${near ? ` (did you mean "${near}"?)` : ''}; known: ${known.join(', ')}`);
  }
}
