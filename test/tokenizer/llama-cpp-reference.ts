// Reference token ids from llama.cpp (through node-llama-cpp, installed by `npm run bench:setup`) for
// the recording scripts next to this file. A vocabulary is given as GGUF metadata, written to a
// temporary vocab-only GGUF and loaded with vocabOnly. Not used by the tests themselves: they read
// the JSON fixtures these scripts write.
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import type { GGUFValue } from '../../src/model/gguf/types.js';
import { GGUFWriter, inferTyped } from '../../src/model/gguf/writer.js';

export interface ReferenceVocab {
  tokenize(text: string, parseSpecial: boolean): number[];
  /** The text llama.cpp gives for ids, with or without the text of special tokens. */
  detokenize(ids: number[], renderSpecial: boolean): string;
  dispose(): Promise<void>;
}

export class LlamaCppReference {
  private readonly dir = mkdtempSync(join(tmpdir(), 'vserve-llama-ref-'));
  private fileCount = 0;

  private constructor(private readonly llama: any) {}

  static async open(): Promise<LlamaCppReference> {
    const { getLlama, LlamaLogLevel } = await import('node-llama-cpp');
    return new LlamaCppReference(await getLlama({ gpu: false, build: 'never', logLevel: LlamaLogLevel.error }));
  }

  /** Loads a vocabulary from metadata; throws what llama.cpp throws (e.g. an unknown pre-tokenizer). */
  async load(meta: ReadonlyMap<string, GGUFValue>): Promise<ReferenceVocab> {
    const writer = new GGUFWriter();
    for (const [key, value] of meta) writer.set(key, inferTyped(value));
    const path = join(this.dir, `vocab-${this.fileCount++}.gguf`);
    writer.writeFile(path, () => []);
    const model = await this.llama.loadModel({ modelPath: path, vocabOnly: true });
    return {
      tokenize: (text, parseSpecial) => Array.from(model.tokenize(text, parseSpecial) as Iterable<number>),
      detokenize: (ids, renderSpecial) => model.detokenize(ids, renderSpecial) as string,
      dispose: () => model.dispose(),
    };
  }

  async close(): Promise<void> {
    await this.llama.dispose();
    rmSync(this.dir, { recursive: true, force: true });
  }
}
