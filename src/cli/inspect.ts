// vserve inspect FILE: what a GGUF holds, without loading its weights.
import { GGUFFile } from '../model/gguf/reader.js';
import { typeName } from '../model/gguf/types.js';
import { checkRunnable } from '../model/runnability.js';
import { parseCliArgs } from './args.js';
import { CliError } from './cli-error.js';
import { MODEL_OPTION, modelArgument } from './model-arg.js';

export async function main(argv: string[]): Promise<void> {
  const { values, positionals } = parseCliArgs({
    args: argv,
    allowPositionals: true,
    options: { ...MODEL_OPTION, json: { type: 'boolean' }, tensors: { type: 'boolean' }, help: { type: 'boolean', short: 'h' } },
  });
  if (values.help || (values.model === undefined && positionals.length === 0)) {
    console.log('usage: vserve inspect [-m] FILE [--json] [--tensors]\n  --json     machine-readable output\n  --tensors  list every tensor');
    if (!values.help) throw new CliError('inspect needs a GGUF file (as FILE or -m FILE)');
    return;
  }
  const path = modelArgument('inspect', values.model, positionals);
  const file = GGUFFile.open(path);
  try {
    const arch = String(file.get('general.architecture') ?? 'unknown');
    const hp: Record<string, unknown> = {};
    for (const [k, v] of file.metadata) {
      if (k.startsWith(`${arch}.`) && (typeof v === 'number' || typeof v === 'string' || typeof v === 'boolean')) hp[k.slice(arch.length + 1)] = typeof v === 'number' ? readableFloat(v) : v;
    }
    const tokens = file.get<string[]>('tokenizer.ggml.tokens');
    const byType = new Map<string, { count: number; bytes: number }>();
    let totalBytes = 0, totalParams = 0;
    for (const t of file.tensors) {
      const e = byType.get(typeName(t.type)) ?? { count: 0, bytes: 0 };
      e.count++;
      e.bytes += t.nBytes;
      byType.set(typeName(t.type), e);
      totalBytes += t.nBytes;
      totalParams += t.nElements;
    }
    const runnable = checkRunnable(file);
    const info = {
      file: path,
      runs: runnable.runs,
      problems: runnable.problems,
      ggufVersion: file.version,
      name: file.get('general.name') ?? null,
      architecture: arch,
      hyperparameters: hp,
      contextLength: hp['context_length'] ?? null,
      tokenizer: {
        kind: file.get('tokenizer.ggml.model') ?? null,
        pre: file.get('tokenizer.ggml.pre') ?? null,
        size: Array.isArray(tokens) ? tokens.length : 0,
        bos: file.get('tokenizer.ggml.bos_token_id') ?? null,
        eos: file.get('tokenizer.ggml.eos_token_id') ?? null,
        chatTemplate: typeof file.get('tokenizer.chat_template') === 'string',
      },
      tensors: {
        count: file.tensors.length,
        parameters: totalParams,
        bytes: totalBytes,
        byType: Object.fromEntries(byType),
        ...(values.tensors ? { list: file.tensors.map((t) => ({ name: t.name, type: typeName(t.type), dims: t.dims, bytes: t.nBytes })) } : {}),
      },
    };
    if (values.json) {
      console.log(JSON.stringify(info, null, 2));
      return;
    }
    const lines = [
      `file           ${info.file} (GGUF v${info.ggufVersion})`,
      `name           ${info.name ?? '-'}`,
      `runs           ${runnable.runs ? 'yes' : 'no'}`,
      ...runnable.problems.map((p) => `  ${p}`),
      `architecture   ${arch}`,
      `context        ${info.contextLength ?? '-'}`,
      ...Object.entries(hp).filter(([k]) => k !== 'context_length').map(([k, v]) => `  ${k.padEnd(38)} ${v}`),
      `tokenizer      ${info.tokenizer.kind ?? 'none'}${info.tokenizer.pre ? ` (pre: ${info.tokenizer.pre})` : ''}, ${info.tokenizer.size} tokens, bos ${info.tokenizer.bos ?? '-'}, eos ${info.tokenizer.eos ?? '-'}, chat template: ${info.tokenizer.chatTemplate ? 'yes' : 'no'}`,
      `tensors        ${info.tensors.count}, ${formatCount(totalParams)} parameters, ${formatBytes(totalBytes)}`,
      ...[...byType].map(([t, e]) => `  ${t.padEnd(8)} ${String(e.count).padStart(5)} tensors  ${formatBytes(e.bytes)}`),
      ...(values.tensors ? file.tensors.map((t) => `  ${t.name.padEnd(32)} ${typeName(t.type).padEnd(6)} [${t.dims.join(', ')}]`) : []),
    ];
    console.log(lines.join('\n'));
  } finally {
    file.close();
  }
}

/**
 * A float32 metadata value in the fewest digits that read back as the same float32 (1e-5, not
 * 0.000009999999747378752). Numbers that are not float32 values are left as they are.
 */
export function readableFloat(v: number): number {
  if (Number.isInteger(v) || Math.fround(v) !== v) return v;
  for (let digits = 1; digits < 17; digits++) {
    const short = Number(v.toPrecision(digits));
    if (Math.fround(short) === v) return short;
  }
  return v;
}

function formatBytes(n: number): string {
  const units = ['B', 'KiB', 'MiB', 'GiB', 'TiB'];
  let i = 0;
  while (n >= 1024 && i < units.length - 1) { n /= 1024; i++; }
  return `${n.toFixed(i ? 2 : 0)} ${units[i]}`;
}

function formatCount(n: number): string {
  if (n >= 1e9) return `${(n / 1e9).toFixed(2)}B`;
  if (n >= 1e6) return `${(n / 1e6).toFixed(2)}M`;
  if (n >= 1e3) return `${(n / 1e3).toFixed(1)}K`;
  return String(n);
}
