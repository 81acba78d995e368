// The eviction policies by name: when each runs, what the attention op must accumulate for it, and its
// selection. The engine looks a policy up once and asks the attention op for `scores` accordingly.
import { KVError } from '../errors.js';
import { selectChunkKV } from './chunkkv.js';
import { selectH2O } from './h2o.js';
import type { EvictionPolicyName, EvictionSelect } from './policy.js';
import { selectPyramidKV } from './pyramidkv.js';
import { selectSinks } from './sinks.js';
import { selectSnapKV } from './snapkv.js';
import { selectTOVA } from './tova.js';

export interface EvictionPolicy {
  name: EvictionPolicyName;
  /** 'prompt': compress once after prefill; 'decode': evict as the sequence grows past its budget. */
  when: 'prompt' | 'decode';
  /**
   * What the attention op adds to a row's score: 'accumulate', every query's attention so far; 'last', the
   * current query's only; 'window', the observation window's queries (the last `window` prompt tokens); 'none'.
   */
  scores: 'accumulate' | 'last' | 'window' | 'none';
  select: EvictionSelect;
}

export const EVICTION_POLICIES: Readonly<Record<EvictionPolicyName, EvictionPolicy>> = {
  sinks: { name: 'sinks', when: 'decode', scores: 'none', select: selectSinks },
  h2o: { name: 'h2o', when: 'decode', scores: 'accumulate', select: selectH2O },
  tova: { name: 'tova', when: 'decode', scores: 'last', select: selectTOVA },
  snapkv: { name: 'snapkv', when: 'prompt', scores: 'window', select: selectSnapKV },
  chunkkv: { name: 'chunkkv', when: 'prompt', scores: 'window', select: selectChunkKV },
  pyramidkv: { name: 'pyramidkv', when: 'prompt', scores: 'window', select: selectPyramidKV },
};

export const EVICTION_POLICY_NAMES = Object.keys(EVICTION_POLICIES) as EvictionPolicyName[];

export function isEvictionPolicyName(name: unknown): name is EvictionPolicyName {
  return typeof name === 'string' && Object.hasOwn(EVICTION_POLICIES, name);
}

/** The policy of that name, or an error that lists the valid names. */
export function parseEvictionPolicy(name: string): EvictionPolicy {
  if (Object.hasOwn(EVICTION_POLICIES, name)) return EVICTION_POLICIES[name as EvictionPolicyName];
  throw new KVError('ERR_KV_INVALID_ARGUMENT', `unknown KV eviction policy '${name}'; valid: ${EVICTION_POLICY_NAMES.join(', ')}`);
}

export type { EvictionInput, EvictionOptions, EvictionPolicyName, EvictionSelect, KeepSets } from './policy.js';
export { applyMoves, moveList } from './keep-order.js';
export { pyramidBudgets, PYRAMID_BETA } from './pyramidkv.js';
export { CHUNK_TOKENS } from './chunkkv.js';
export { SINK_TOKENS } from './sinks.js';
export { SNAP_KERNEL, SNAP_POOLING } from './snapkv.js';
export { selectChunkKV, selectH2O, selectPyramidKV, selectSinks, selectSnapKV, selectTOVA };
