#!/usr/bin/env node
// vserve's command line: one subcommand per file in this folder.
import { readFileSync } from 'node:fs';
import { CliError } from './cli-error.js';
import { withFlagNames } from './flag-names.js';

const COMMANDS: Record<string, { summary: string; load: () => Promise<{ main(argv: string[]): Promise<void> }> }> = {
  run: { summary: 'generate text from a prompt and stream it to stdout', load: () => import('./run.js') },
  chat: { summary: "talk to a model in the terminal, with its chat template", load: () => import('./chat.js') },
  tokenize: { summary: 'print token ids for text (or text for ids)', load: () => import('./tokenize.js') },
  serve: { summary: 'OpenAI-compatible HTTP server with a web playground and live KV map', load: () => import('./serve.js') },
  router: { summary: 'one OpenAI endpoint over several serve replicas, routing by cached prefix and load', load: () => import('./router.js') },
  bench: { summary: 'bench serve --url URL: load-test an OpenAI-compatible server (TTFT, TBT, throughput)', load: () => import('./bench.js') },
  inspect: { summary: "print a GGUF file's architecture, tokenizer and tensors", load: () => import('./inspect.js') },
};

/** Errors users can act on: printed as one line. */
const USER_ERRORS = ['CliError', 'GGUFError', 'ModelConfigError', 'ContextLengthError', 'SamplingError', 'TokenizerError', 'ChatTemplateError', 'NativeAddonError', 'EngineConfigError', 'RequestParamsError', 'KVError', 'ModelFaultError'];
/** Of those, the ones that name the library's options rather than the flags. */
const LIBRARY_ERRORS = ['SamplingError', 'EngineConfigError', 'RequestParamsError', 'KVError'];

function usage(): string {
  const lines = Object.entries(COMMANDS).map(([name, c]) => `  ${name.padEnd(10)} ${c.summary}`);
  return `usage: vserve <command> [options]\n\ncommands:\n${lines.join('\n')}\n\nRun "vserve <command> --help" for a command's options, "vserve --version" for the version.`;
}

function version(): string {
  const pkg = JSON.parse(readFileSync(new URL('../../../package.json', import.meta.url), 'utf8')) as { version: string };
  return pkg.version;
}

async function main(argv: string[]): Promise<void> {
  const [name, ...rest] = argv;
  if (name === '--version' || name === '-v') {
    console.log(`vserve ${version()} (Node.js ${process.version})`);
    return;
  }
  if (name === '--help' || name === '-h' || name === 'help') {
    console.log(usage());
    return;
  }
  // No command is a mistake (a script must not take it for success), but the help is what was wanted.
  if (!name) throw new CliError(`no command given\n\n${usage()}`);
  const command = COMMANDS[name];
  if (!command) throw new CliError(`unknown command "${name}"\n\n${usage()}`);
  await (await command.load()).main(rest);
}

main(process.argv.slice(2)).catch((e: unknown) => {
  const err = e as NodeJS.ErrnoException;
  if (USER_ERRORS.includes(err?.name) || err?.code?.startsWith?.('ERR_PARSE_ARGS')) {
    process.stderr.write(`vserve: ${LIBRARY_ERRORS.includes(err.name) ? withFlagNames(err.message) : err.message}\n`);
  } else {
    // A bug: say so in a sentence; the stack is for whoever debugs it.
    process.stderr.write(`vserve: internal error: ${err?.message ?? String(e)}\n`);
    if (process.env.VSERVE_DEBUG) process.stderr.write(`${err?.stack}\n`);
    else process.stderr.write('vserve: set VSERVE_DEBUG=1 to see where it happened, and please report it\n');
  }
  process.exitCode = 1;
});
