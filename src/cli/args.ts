// parseArgs for the CLI: an option that takes a value may take a negative number (`-n -1`,
// `--seed -5`), which node:util's parser would read as an unknown option instead.
import { parseArgs, type ParseArgsConfig } from 'node:util';

export function parseCliArgs<T extends ParseArgsConfig>(config: T): ReturnType<typeof parseArgs<T>> {
  const valueTaking = new Map<string, string>();
  for (const [name, o] of Object.entries(config.options ?? {})) {
    if (o.type !== 'string') continue;
    valueTaking.set(`--${name}`, name);
    if (o.short) valueTaking.set(`-${o.short}`, name);
  }
  const args = config.args ?? [];
  const joined: string[] = [];
  for (let i = 0; i < args.length; i++) {
    const arg = args[i]!;
    if (arg === '--') {
      joined.push(...args.slice(i));
      break;
    }
    const name = valueTaking.get(arg);
    const next = args[i + 1];
    if (name !== undefined && next !== undefined && /^-(\d|\.\d)/.test(next)) {
      joined.push(`--${name}=${next}`);
      i++;
    } else {
      joined.push(arg);
    }
  }
  return parseArgs({ ...config, args: joined }) as ReturnType<typeof parseArgs<T>>;
}
