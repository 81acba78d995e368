// The architecture registry: one entry per general.architecture value vserve runs.
import type { Architecture } from '../architecture.js';
import type { GGUFFile } from '../gguf/reader.js';
import { MetadataReader, type ModelConfig, ModelConfigError } from '../model-config.js';
import { gemma } from './gemma.js';
import { gemma2 } from './gemma2.js';
import { gemma3 } from './gemma3.js';
import { llama } from './llama.js';
import { mistral3 } from './mistral3.js';
import { phi3 } from './phi3.js';
import { qwen2 } from './qwen2.js';
import { qwen2moe } from './qwen2moe.js';
import { qwen3 } from './qwen3.js';
import { qwen3moe } from './qwen3moe.js';

const ARCHITECTURES: ReadonlyMap<string, Architecture> = new Map(
  ([llama, qwen2, qwen3, phi3, qwen2moe, qwen3moe, gemma, gemma2, gemma3, mistral3] as Architecture[]).map((a) => [a.name, a]),
);

export const SUPPORTED_ARCHITECTURES: readonly string[] = [...ARCHITECTURES.keys()];

/** The file's architecture, or a ModelConfigError naming it and listing those vserve runs. */
export function architectureOf(file: GGUFFile): Architecture {
  const where = file.path ?? 'model';
  const name = file.get<string>('general.architecture');
  if (typeof name !== 'string') throw new ModelConfigError(`${where}: general.architecture is missing`);
  const arch = ARCHITECTURES.get(name);
  if (!arch) throw new ModelConfigError(`${where}: unsupported architecture "${name}" (supported: ${SUPPORTED_ARCHITECTURES.join(', ')})`);
  return arch;
}

/** The file's hyperparameters, read by its architecture (no weights are loaded). */
export function readModelConfig(file: GGUFFile): ModelConfig {
  const arch = architectureOf(file);
  return arch.readConfig(new MetadataReader(file, arch.name));
}
