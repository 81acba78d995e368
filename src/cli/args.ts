// parseArgs for the CLI: an option that takes a value may take a negative number (`-n -1`,
// `--seed -5`), which node:util's parser would read as an unknown option instead; and an unknown option
// is named with the nearest known one, where node:util's message talks about positional arguments.
import { parseArgs, type ParseArgsConfig } from 'node:util';
import { nearestName } from '../engine/known-keys.js';
import { CliError } from './cli-error.js';

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
  try {
    return parseArgs({ ...config, args: joined }) as ReturnType<typeof parseArgs<T>>;
  } catch (e) {
    if ((e as { code?: string }).code !== 'ERR_PARSE_ARGS_UNKNOWN_OPTION') throw e;
    const given = /'([^']+)'/.exec((e as Error).message)?.[1] ?? '';
    const flag = given.split('=')[0]!;
    const near = flag.startsWith('--') ? nearestName(flag.slice(2), Object.keys(config.options ?? {})) : undefined;
    throw new CliError(`unknown option ${flag}${near ? ` (did you mean --${near}?)` : ''}; --help lists the options`);
  }
}
