// The model a command runs: `-m FILE`, a bare FILE, or the bundled model, found beside the installed
// package (not the current folder), so the default works anywhere, also after `npm link`.
import { statSync } from 'node:fs';
import { fileURLToPath } from 'node:url';
import { CliError } from './cli-error.js';

/** The -m flag every model-running command takes (the model may also come as a bare FILE). */
export const MODEL_OPTION = { model: { type: 'string', short: 'm' } } as const;

export const BUNDLED_MODEL = fileURLToPath(new URL('../../../models/stories260K.gguf', import.meta.url));

export function modelArgument(command: string, flag: string | undefined, positionals: readonly string[]): string {
  if (positionals.length > 1) throw new CliError(`${command} takes one model file, got ${positionals.length}: ${positionals.join(' ')}`);
  if (flag !== undefined && positionals.length === 1) throw new CliError(`${command}: give the model once, as -m FILE or as FILE, not both`);
  const path = flag ?? positionals[0] ?? BUNDLED_MODEL;
  if (statSync(path, { throwIfNoEntry: false })?.isDirectory()) {
    throw new CliError(`${path} is a folder; pass the GGUF file itself (e.g. ${path.replace(/\/$/, '')}/model.gguf)`);
  }
  return path;
}
