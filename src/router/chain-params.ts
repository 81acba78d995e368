// The parameters of a replica's block key chain, as its /v1/kv/events hello states them, and the checks
// that let the router hash a request once for every replica: all replicas must build keys the same way
// (same model file, KV format, block size and layout version), and the model must be the router's own
// (-m FILE), since the router's tokens are what it hashes.
import { chainFingerprintParts } from '../kv/block-hash.js';

export interface ChainParams {
  /** The prefix index's chain fingerprint: the model file's, then the cache format's (kv/block-hash.ts chainFingerprint). */
  fingerprint: string;
  blockTokens: number;
  layoutVersion: string;
}

/** Reads the chain parameters from a hello payload; throws when a field is missing or of the wrong type. */
export function chainParamsOf(hello: unknown): ChainParams {
  const h = hello as Partial<ChainParams> | null;
  if (typeof h?.fingerprint !== 'string' || typeof h.layoutVersion !== 'string' || !(Number.isInteger(h.blockTokens) && h.blockTokens! > 0)) {
    throw new Error('the hello event lacks fingerprint, blockTokens or layoutVersion');
  }
  return { fingerprint: h.fingerprint, blockTokens: h.blockTokens!, layoutVersion: h.layoutVersion };
}

/** The model-file part of a chain fingerprint (kv/block-hash.ts). */
export function modelPartOf(fingerprint: string): string {
  return chainFingerprintParts(fingerprint).model;
}

/** How `theirs` differs from `ours`, in words ("block size 16 vs 32; ..."), or undefined when they agree. */
export function chainDifference(ours: ChainParams, theirs: ChainParams): string | undefined {
  const diffs: string[] = [];
  if (ours.layoutVersion !== theirs.layoutVersion) diffs.push(`layout version ${theirs.layoutVersion} vs ${ours.layoutVersion}`);
  if (ours.blockTokens !== theirs.blockTokens) diffs.push(`block size ${theirs.blockTokens} vs ${ours.blockTokens} tokens`);
  if (modelPartOf(ours.fingerprint) !== modelPartOf(theirs.fingerprint)) diffs.push(`model file fingerprint ${modelPartOf(theirs.fingerprint)} vs ${modelPartOf(ours.fingerprint)}`);
  else if (ours.fingerprint !== theirs.fingerprint) diffs.push(`cache format ${formatPartOf(theirs.fingerprint)} vs ${formatPartOf(ours.fingerprint)}`);
  return diffs.length > 0 ? diffs.join('; ') : undefined;
}

function formatPartOf(fingerprint: string): string {
  return chainFingerprintParts(fingerprint).format || '(none)';
}
