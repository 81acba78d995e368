// Benchmark reports: JSON (all numbers) plus a short Markdown summary under bench/results/ (git-ignored),
// timestamped, with a `-latest` copy for quick reading. The Markdown also goes to stdout.
import { mkdirSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { resultsDir } from './paths.js';

export function writeReport(name: string, data: unknown, markdown: string): { json: string; md: string } {
  mkdirSync(resultsDir, { recursive: true });
  const stamp = new Date().toISOString().replace(/[:.]/g, '-').replace(/-\d+Z$/, 'Z');
  const json = JSON.stringify(data, null, 2) + '\n';
  const paths = { json: join(resultsDir, `${name}-${stamp}.json`), md: join(resultsDir, `${name}-${stamp}.md`) };
  for (const suffix of [stamp, 'latest']) {
    writeFileSync(join(resultsDir, `${name}-${suffix}.json`), json);
    writeFileSync(join(resultsDir, `${name}-${suffix}.md`), markdown);
  }
  process.stdout.write(`${markdown}\nwritten: ${paths.json}\n         ${paths.md}\n`);
  return paths;
}

/** A Markdown table from a header row and data rows. */
export function markdownTable(header: readonly string[], rows: readonly (readonly (string | number)[])[]): string {
  const line = (cells: readonly (string | number)[]) => `| ${cells.join(' | ')} |`;
  return [line(header), line(header.map(() => '---')), ...rows.map(line)].join('\n');
}

/** A report of a run still in progress: `<name>-partial.{json,md}`, overwritten each time, nothing on stdout. */
export function writePartialReport(name: string, data: unknown, markdown: string): void {
  mkdirSync(resultsDir, { recursive: true });
  writeFileSync(join(resultsDir, `${name}-partial.json`), JSON.stringify(data, null, 2) + '\n');
  writeFileSync(join(resultsDir, `${name}-partial.md`), markdown);
}
