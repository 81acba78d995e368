// `npm run bench -- constrained`: what constrained decoding (response_format, tool calls) costs per
// generated token on a 32K-vocabulary model (issue #16's target: the mask at most 10% of a decode step).
//   mask   — each format's mask timed step by step along a document it accepts (constrained-mask.ts);
//   decode — decoding under formats against decoding freely, vserve and llama.cpp (GBNF grammars) on the
//            same file, the same prompts and threads (constrained-decode.ts).
// Repeated --reps times, alternating engines; medians and ranges are reported.
import { GGUFFile } from '../src/model/gguf/reader.js';
import { createTokenizer } from '../src/model/tokenizer/index.js';
import { BenchArgs } from './args.js';
import { MASK_CASES } from './constrained-cases.js';
import { DECODE_FORMATS, llamaCppDecode, vserveDecode, type DecodeRun } from './constrained-decode.js';
import { measureMaskCost, type MaskCost } from './constrained-mask.js';
import { waitForQuiet } from './contention.js';
import { machineInfo } from './machine.js';
import { ensureBenchModel, isBenchDType, isShapeName } from './models.js';
import { markdownTable, writeReport } from './report.js';
import { median, medianRange, round } from './stats.js';

const TARGET_SHARE = 0.1;
const PROMPTS = [
  'Write a JSON object describing a person:',
  'Once upon a time, there was a little girl named Lily. As JSON:',
  'The weather report for tomorrow, in JSON:',
  'A record of the book you read last:',
];

export async function constrainedCommand(argv: readonly string[]): Promise<void> {
  const args = new BenchArgs(argv);
  const shape = args.string('shape', 'tinyllama-1.1b');
  const dtype = args.string('dtype', 'q4_K_M');
  if (!isShapeName(shape)) throw new Error(`unknown --shape ${shape}`);
  if (!isBenchDType(dtype)) throw new Error(`unknown --dtype ${dtype}`);
  const reps = args.int('reps', 3);
  const threads = args.int('threads', 2);
  const maxTokens = args.int('max-tokens', 48);
  const peer = !args.flag('no-peer');
  const quietWaitMs = args.int('quiet-wait', 10) * 1000;
  const modelPath = await ensureBenchModel(shape, dtype);

  const file = GGUFFile.open(modelPath);
  const tokenizer = createTokenizer(file);
  console.log(`constrained: ${shape} ${dtype}, vocabulary ${tokenizer.vocabSize}, ${threads} threads, ${reps} reps`);
  await waitForQuiet(quietWaitMs);
  const mask = measureMaskCost(tokenizer, MASK_CASES, 5);
  file.close();
  for (const c of mask.costs) console.log(`  mask ${c.case}: ${c.tokens} tokens, p50 ${c.p50Ms} ms, p90 ${c.p90Ms} ms, mean ${c.meanMs} ms`);

  const setup = { modelPath, prompts: PROMPTS, maxTokens, threads };
  const runs: DecodeRun[] = [];
  for (let r = 0; r < reps; r++) {
    await waitForQuiet(quietWaitMs);
    runs.push(...(await vserveDecode(setup, DECODE_FORMATS)));
    if (peer) {
      await waitForQuiet(quietWaitMs);
      runs.push(...(await llamaCppDecode(setup, DECODE_FORMATS)));
    }
    console.log(`  rep ${r + 1}: ${runs.slice(-DECODE_FORMATS.length * (peer ? 2 : 1)).map((x) => `${x.engine} ${x.format} ${x.stepMs} ms`).join(', ')}`);
  }

  const stepsOf = (engine: string, format: string) => runs.filter((x) => x.engine === engine && x.format === format).map((x) => x.stepMs);
  const freeStep = median(stepsOf('vserve', 'free'));
  const maskRows = mask.costs.map((c: MaskCost) => [c.case, c.tokens, c.p50Ms, c.p90Ms, c.meanMs, `${round((100 * c.meanMs) / freeStep, 2)}%`]);
  const engines = peer ? ['vserve', 'llama.cpp'] : ['vserve'];
  const decodeRows = engines.flatMap((engine) => {
    const free = median(stepsOf(engine, 'free'));
    return DECODE_FORMATS.map((f) => {
      const steps = stepsOf(engine, f.name);
      const timed = runs.filter((x) => x.engine === engine && x.format === f.name).map((x) => x.steps);
      return [engine, f.name, medianRange(steps), median(timed), f.name === 'free' ? '—' : `${round((100 * (median(steps) - free)) / free, 1)}%`];
    });
  });
  const worst = Math.max(...mask.costs.map((c) => c.meanMs));
  const data = { shape, dtype, vocab: tokenizer.vocabSize, threads, reps, maxTokens, machine: machineInfo(), tablesMs: mask.tablesMs, mask: mask.costs, vserveFreeStepMs: freeStep, runs, targetShare: TARGET_SHARE, worstMaskShare: worst / freeStep };
  const md = [
    `# Constrained decoding: ${shape} ${dtype} (${tokenizer.vocabSize} tokens), ${threads} threads`,
    '',
    `The mask per step, along each case's document (5 walks; the vocabulary's tables took ${mask.tablesMs} ms once). Share: the mean step against vserve's free decode step (${round(freeStep, 2)} ms); target at most ${TARGET_SHARE * 100}%.`,
    '',
    markdownTable(['case', 'tokens', 'p50 ms', 'p90 ms', 'mean ms', 'share of a decode step'], maskRows),
    '',
    `Decoding under a format against decoding freely (median ms between tokens [range over ${reps} reps], steps timed per rep, overhead against the same engine's free decoding):`,
    '',
    markdownTable(['engine', 'format', 'ms per step', 'steps', 'overhead'], decodeRows),
    '',
    `Worst mean mask step: ${round((100 * worst) / freeStep, 2)}% of a decode step (target <= ${TARGET_SHARE * 100}%: ${worst / freeStep <= TARGET_SHARE ? 'met' : 'not met'}).`,
  ].join('\n');
  writeReport('constrained', data, md);
}
