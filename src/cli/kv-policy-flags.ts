// The flags that choose KV eviction (serve, chat): the policy and its budget, checked here so that a
// typo is a one-line CLI error rather than a failed request later.
import { EVICTION_POLICY_NAMES } from '../kv/eviction/index.js';
import { flagHelp, type FlagHelp } from './flag-help.js';
import { choiceOption, CliError } from './cli-error.js';

export const KV_POLICY_OPTIONS = {
  'kv-policy': { type: 'string' },
  'kv-budget': { type: 'string' },
} as const;

const KV_POLICY_FLAGS: readonly FlagHelp[] = [
  ['--kv-policy NAME', 'KV eviction for requests that name none: none, sinks, h2o or tova', '(keep each sequence within the budget as it grows), snapkv, chunkkv', 'or pyramidkv (compress each prompt once)'],
  ['--kv-budget N', 'tokens the policy keeps, or a fraction of the prompt (0.25)'],
];

export function kvPolicyHelp(column: number): string {
  return flagHelp(KV_POLICY_FLAGS, column);
}

export type KVPolicyName = 'none' | (typeof EVICTION_POLICY_NAMES)[number];

export function kvPolicyOption(v: { 'kv-policy'?: string }): KVPolicyName | undefined {
  return choiceOption<KVPolicyName>('kv-policy', v['kv-policy'], ['none', ...EVICTION_POLICY_NAMES]);
}

export function kvBudgetOption(v: { 'kv-budget'?: string }): number | undefined {
  const s = v['kv-budget'];
  if (s === undefined) return undefined;
  const n = Number(s);
  if (!(Number.isFinite(n) && n > 0 && (n < 1 || Number.isInteger(n)))) throw new CliError(`--kv-budget must be a whole number of tokens or a fraction between 0 and 1, got "${s}"`);
  return n;
}
