// Whether vserve can run a GGUF file, and if not why, without loading its weights: the architecture,
// the hyperparameters, every tensor's weight type, and the tokenizer are each checked, and every
// problem is reported (not just the first), for `vserve inspect`.
import { NATIVE_WEIGHT_TYPES } from '../backend/native/native-backend.js';
import { readModelConfig } from './architectures/index.js';
import type { GGUFFile } from './gguf/reader.js';
import { typeName } from './gguf/types.js';
import { createTokenizer } from './tokenizer/index.js';

export interface Runnability {
  runs: boolean;
  /** One sentence per problem, naming what is unsupported. */
  problems: string[];
}

export function checkRunnable(file: GGUFFile, weightTypes = NATIVE_WEIGHT_TYPES): Runnability {
  const problems: string[] = [];
  const where = file.path ?? 'model';
  const reason = (e: unknown) => (e instanceof Error ? e.message : String(e)).replace(`${where}: `, '');
  try {
    readModelConfig(file);
  } catch (e) {
    problems.push(`architecture: ${reason(e)}`);
  }
  const unsupported = new Map<string, string[]>();
  for (const t of file.tensors) {
    if (t.dims.length < 2 || weightTypes.has(t.type)) continue;
    const names = unsupported.get(typeName(t.type)) ?? [];
    names.push(t.name);
    unsupported.set(typeName(t.type), names);
  }
  for (const [type, names] of unsupported) {
    const some = names.slice(0, 3).join(', ') + (names.length > 3 ? ` and ${names.length - 3} more` : '');
    problems.push(`weight type: ${type} is not supported (${names.length} tensor${names.length === 1 ? '' : 's'}: ${some}); supported: ${[...weightTypes].map((x) => typeName(x)).join(', ')}`);
  }
  try {
    createTokenizer(file);
  } catch (e) {
    problems.push(`tokenizer: ${reason(e)}`);
  }
  return { runs: problems.length === 0, problems };
}
