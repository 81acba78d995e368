// Minimal command-line options for benchmark subcommands: `--name value` and bare `--flag`.

export class BenchArgs {
  private readonly values = new Map<string, string>();

  constructor(argv: readonly string[]) {
    for (let i = 0; i < argv.length; i++) {
      const a = argv[i]!;
      if (!a.startsWith('--')) throw new Error(`unexpected argument "${a}" (options look like --name value)`);
      const eq = a.indexOf('=');
      if (eq > 0) {
        this.values.set(a.slice(2, eq), a.slice(eq + 1));
      } else if (i + 1 < argv.length && !argv[i + 1]!.startsWith('--')) {
        this.values.set(a.slice(2), argv[++i]!);
      } else {
        this.values.set(a.slice(2), 'true');
      }
    }
  }

  string(name: string, fallback: string): string {
    return this.values.get(name) ?? fallback;
  }

  /** A comma-separated list, e.g. --dtypes q8_0,q4_0. */
  list(name: string, fallback: readonly string[]): string[] {
    const v = this.values.get(name);
    return v === undefined ? [...fallback] : v.split(',').map((s) => s.trim()).filter(Boolean);
  }

  int(name: string, fallback: number): number {
    const v = this.values.get(name);
    if (v === undefined) return fallback;
    const n = Number(v);
    if (!Number.isInteger(n) || n < 0) throw new Error(`--${name} must be a non-negative integer, got "${v}"`);
    return n;
  }

  flag(name: string): boolean {
    return this.values.get(name) === 'true';
  }
}
