// vserve tokenize: text to token ids (or ids to text with --decode), from a model's GGUF tokenizer.
import { createInterface } from 'node:readline';
import { parseArgs } from 'node:util';
import { GGUFFile } from '../model/gguf/reader.js';
import { createTokenizer } from '../model/tokenizer/index.js';
import { CliError } from './cli-error.js';

const HELP = `usage: vserve tokenize -m FILE (--text TEXT | --jsonl | --decode '[ids]') [--bos] [--special]
  --text TEXT     print the token ids of TEXT as a JSON array
  --jsonl         read one JSON string per line from stdin, print one JSON array per line
  --decode IDS    print the text of a JSON array of token ids
  --bos           add BOS/EOS as the model's tokenizer asks (default: none)
  --special       recognise control-token texts such as <s> in the input`;

export async function main(argv: string[]): Promise<void> {
  const { values } = parseArgs({
    args: argv,
    options: {
      model: { type: 'string', short: 'm' },
      text: { type: 'string' },
      jsonl: { type: 'boolean' },
      decode: { type: 'string' },
      bos: { type: 'boolean' },
      special: { type: 'boolean' },
      help: { type: 'boolean', short: 'h' },
    },
  });
  if (values.help) {
    console.log(HELP);
    return;
  }
  if (!values.model) throw new CliError('tokenize needs -m FILE (see vserve tokenize --help)');
  const modes = [values.text !== undefined, values.jsonl === true, values.decode !== undefined].filter(Boolean).length;
  if (modes !== 1) throw new CliError('tokenize needs exactly one of --text, --jsonl or --decode');
  const file = GGUFFile.open(values.model);
  const tokenizer = createTokenizer(file);
  file.close();
  const opts = { addSpecial: values.bos === true, parseSpecial: values.special === true };

  if (values.decode !== undefined) {
    let ids: unknown;
    try {
      ids = JSON.parse(values.decode);
    } catch {
      throw new CliError(`--decode needs a JSON array of token ids, got ${values.decode}`);
    }
    if (!Array.isArray(ids) || !ids.every((i) => Number.isInteger(i))) throw new CliError('--decode needs a JSON array of integers');
    process.stdout.write(tokenizer.decode(ids as number[]) + '\n');
    return;
  }
  if (values.text !== undefined) {
    console.log(JSON.stringify(tokenizer.encode(values.text, opts)));
    return;
  }
  const lines = createInterface({ input: process.stdin, crlfDelay: Infinity });
  let lineNo = 0;
  for await (const line of lines) {
    lineNo++;
    if (line.trim() === '') continue;
    let text: unknown;
    try {
      text = JSON.parse(line);
    } catch {
      throw new CliError(`stdin line ${lineNo} is not JSON: ${line.slice(0, 60)}`);
    }
    if (typeof text !== 'string') throw new CliError(`stdin line ${lineNo} is not a JSON string`);
    process.stdout.write(JSON.stringify(tokenizer.encode(text, opts)) + '\n');
  }
}
