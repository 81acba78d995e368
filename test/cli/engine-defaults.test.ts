// The CLI and the engine's schema agree: every default a help text states is, given back as that flag's
// value, the engine's own default; every flag the schema names is one the CLI offers; engine messages are
// reworded to name those flags.
import assert from 'node:assert/strict';
import { test } from 'node:test';
import { ENGINE_DEFAULTS, ENGINE_OPTION_NAMES, engineOptionInfo, parseEngineConfig, type EngineOptionName } from '../../src/config/engine-config.js';
import { SERVE_HELP } from '../../src/cli/serve.js';
import { COMPUTE_HELP } from '../../src/cli/compute-flags.js';
import { withFlagNames } from '../../src/cli/flag-names.js';
import { parseSize } from '../../src/cli/sizes.js';

const HELP = `${SERVE_HELP}\n${COMPUTE_HELP}`;

/** The help lines of one flag: its own line and the continuation lines under it. */
function helpOf(flag: string): string {
  const lines = HELP.split('\n');
  const at = lines.findIndex((l) => new RegExp(`^\\s+(-\\w, )?${flag}( |$)`).test(l));
  assert.ok(at >= 0, `no help line for ${flag}`);
  const rest = lines.slice(at + 1);
  const end = rest.findIndex((l) => /^\s+-/.test(l));
  return [lines[at], ...rest.slice(0, end < 0 ? rest.length : end)].join(' ');
}

/** The default a help text states, in the forms the help uses: (default X), X (default), "; default X". */
function statedDefault(help: string): string | undefined {
  const quoted = /\(default ("[^"]*")\)/.exec(help);
  if (quoted) return JSON.parse(quoted[1]!) as string;
  return (/\bdefault:? ([^\s;),]+)/.exec(help) ?? /(\S+) \(default\)/.exec(help))?.[1];
}

/** What the engine makes of the stated default given as the flag's value. */
function asOption(name: EngineOptionName, text: string): unknown {
  const value = name.endsWith('Bytes') ? parseSize(name, text) : typeof ENGINE_DEFAULTS[name] === 'number' ? Number(text) : text;
  return parseEngineConfig({ [name]: value })[name];
}

test('every default a help text states for an engine option is the schema\'s', () => {
  let checked = 0;
  for (const name of ENGINE_OPTION_NAMES) {
    const { flag } = engineOptionInfo(name);
    // --no-prefix-cache turns a default on off; its help says so in words.
    if (flag === undefined || ENGINE_DEFAULTS[name] === undefined || name === 'prefixCache') continue;
    const stated = statedDefault(helpOf(flag));
    assert.ok(stated !== undefined, `${flag}'s help states no default: ${helpOf(flag)}`);
    assert.deepEqual(asOption(name, stated), ENGINE_DEFAULTS[name], `${flag}: help says ${stated}`);
    checked++;
  }
  assert.ok(checked >= 12, `only ${checked} defaults checked`);
});

test('every flag the schema names is offered by the CLI', () => {
  for (const name of ENGINE_OPTION_NAMES) {
    const { flag } = engineOptionInfo(name);
    if (flag !== undefined) helpOf(flag);
  }
});

test('engine messages name the flags: options from the schema, request parameters from the API', () => {
  assert.equal(withFlagNames('maxSeqs must be an integer between 1 and 4096, got 0'), '--max-seqs must be an integer between 1 and 4096, got 0');
  assert.equal(withFlagNames('kvDiskBytes and kvStoreTimeoutMs'), '--kv-disk-size and --kv-store-timeout');
  assert.equal(withFlagNames('admissionOrder: prefix'), '--admission: prefix');
  assert.equal(withFlagNames('top_k must be >= -1'), '--top-k must be >= -1');
  // Names that are everyday words elsewhere in messages, or whose flag says the opposite, stay as they are.
  assert.equal(withFlagNames('the reference backend; prefixCache'), 'the reference backend; prefixCache');
  // Only whole names: a longer name that contains one is left alone.
  assert.equal(withFlagNames('maxSeqsLimit'), 'maxSeqsLimit');
});
