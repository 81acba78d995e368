// Help lines of a group of flags, the way every command prints them: the flag indented, its description
// from `column` on, continuation lines aligned under it (each command aligns its own column).

/** [flag, first description line, further lines...] */
export type FlagHelp = readonly [flag: string, ...lines: string[]];

export function flagHelp(flags: readonly FlagHelp[], column: number): string {
  return flags.map(([flag, first, ...rest]) =>
    [`      ${flag}`.padEnd(column) + (first ?? ''), ...rest.map((line) => ' '.repeat(column) + line)].join('\n')).join('\n');
}
