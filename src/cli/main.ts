#!/usr/bin/env node
// vserve's command line: one subcommand per file in this folder.
import { CliError } from './cli-error.js';

const COMMANDS: Record<string, { summary: string; load: () => Promise<{ main(argv: string[]): Promise<void> }> }> = {
  run: { summary: 'generate text from a prompt and stream it to stdout', load: () => import('./run.js') },
  tokenize: { summary: 'print token ids for text (or text for ids)', load: () => import('./tokenize.js') },
  serve: { summary: 'OpenAI-compatible HTTP server with a web playground and live KV map', load: () => import('./serve.js') },
  bench: { summary: 'bench serve --url URL: load-test an OpenAI-compatible server (TTFT, TBT, throughput)', load: () => import('./bench.js') },
  inspect: { summary: "print a GGUF file's architecture, tokenizer and tensors", load: () => import('./inspect.js') },
};

function usage(): string {
  const lines = Object.entries(COMMANDS).map(([name, c]) => `  ${name.padEnd(10)} ${c.summary}`);
  return `usage: vserve <command> [options]\n\ncommands:\n${lines.join('\n')}\n\nRun "vserve <command> --help" for a command's options.`;
}

async function main(argv: string[]): Promise<void> {
  const [name, ...rest] = argv;
  if (!name || name === '--help' || name === '-h' || name === 'help') {
    console.log(usage());
    return;
  }
  const command = COMMANDS[name];
  if (!command) throw new CliError(`unknown command "${name}"\n\n${usage()}`);
  await (await command.load()).main(rest);
}

main(process.argv.slice(2)).catch((e: unknown) => {
  // Errors users can act on print as one line; anything else is a bug and keeps its stack.
  const err = e as Error;
  const known = ['CliError', 'GGUFError', 'ModelConfigError', 'ContextLengthError', 'SamplingError', 'TokenizerError', 'ChatTemplateError', 'NativeAddonError', 'EngineConfigError', 'KVError', 'ModelFaultError'];
  if (known.includes(err?.name) || (err as NodeJS.ErrnoException)?.code === 'ERR_PARSE_ARGS_UNKNOWN_OPTION' || (err as NodeJS.ErrnoException)?.code?.startsWith?.('ERR_PARSE_ARGS')) {
    process.stderr.write(`vserve: ${err.message}\n`);
  } else {
    process.stderr.write(`vserve: internal error: ${err?.stack ?? String(e)}\n`);
  }
  process.exitCode = 1;
});
