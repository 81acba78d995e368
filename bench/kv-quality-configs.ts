// Which configurations the KV quality harness measures: the f32 reference, the noise floors (the same
// f32 cache computed another way, which bounds what a difference below it can mean), and the lossy KV
// configurations, each compared with the reference unless it names another.
import { KIVI_TYPES, kvTypeLabel, type KIVIName, type KVFormatName } from '../src/kv/format.js';
import { StaticKVManager, type KVShape } from '../src/kv/index.js';
import type { TransformerModel } from '../src/model/transformer.js';
import { kvConfig, rechunked, withThreads, type QualityConfig } from './kv-quality-run.js';

/** The cache every configuration is measured against, and the one the texts are generated with (explicit: the managers' default is f16). */
const F32_KV: Partial<KVShape> = { type: { k: 'f32', v: 'f32' } };

export interface FormatConfig {
  /** Unique; what --formats selects. */
  name: string;
  /** What the KV manager is built with on top of the model's one-slot shape. */
  shape: Partial<KVShape>;
  /** Tokens per forward pass when not the harness's chunk. */
  step?: number;
}

interface Variant {
  /** K and V stored Walsh-Hadamard rotated per head (--kv-rotate). */
  rotate?: boolean;
  /** Newest tokens kept in f16 by the KIVI formats (default DEFAULT_KIVI_RESIDUAL). */
  residual?: number;
  /** One token per forward pass, as decoding reads the cache (KIVI reads the same in chunks: a check of that). */
  tokenSteps?: boolean;
}

/** A KV type as a configuration, named as the CLI's --kv-type shows it ("q8_0", "kivi2", "q8_0/q4_0" for K/V) plus its variant. */
function kv(k: KVFormatName, v: KVFormatName = k, variant: Variant = {}): FormatConfig {
  const { rotate, residual, tokenSteps } = variant;
  const notes = [rotate === true ? 'rotated' : rotate === false ? 'not rotated' : '', residual === undefined ? '' : `residual ${residual}`, tokenSteps ? '1-token steps' : ''].filter(Boolean);
  return {
    name: kvTypeLabel({ k, v }) + (notes.length > 0 ? ` (${notes.join('; ')})` : ''),
    shape: { type: { k, v }, ...(rotate === undefined ? {} : { rotate }), ...(residual === undefined ? {} : { residual }) },
    ...(tokenSteps ? { step: 1 } : {}),
  };
}

const kivi = (name: KIVIName, variant?: Variant) => kv(KIVI_TYPES[name].k, KIVI_TYPES[name].v, variant);

/** The KV formats measured against f32: one line per configuration. */
export const KV_FORMAT_CONFIGS: readonly FormatConfig[] = [
  // ---- KV formats: one line each ----
  kv('f16'),
  kv('q8_0'),
  kv('q4_0'),
  // Mixed: which of K and V is the more sensitive (keys are, as reported for llama.cpp; DESIGN.md §5).
  kv('q8_0', 'q4_0'),
  kv('q4_0', 'q8_0'),
  kv('f16', 'q8_0'),
  kv('q8_0', 'f16'),
  kv('f16', 'q4_0'),
  kv('q4_0', 'f16'),
  // KIVI: keys per channel, values per token, 2 or 4 bits, the newest 128 tokens in f16 by default.
  kivi('kivi2'),
  kivi('kivi4'),
  kivi('kivi2', { residual: 32 }),
  kivi('kivi4', { residual: 32 }),
  // KIVI's claim: per-channel keys beat per-token keys at the same bits (values per token in both).
  kv('kivi2t', 'kivi2t'),
  kv('kivi2t', 'kivi2t', { residual: 32 }),
  kv('kivi4t', 'kivi4t', { residual: 32 }),
  // One token per forward pass, as decoding reads the cache: the same reads as in chunks, by design.
  kivi('kivi2', { residual: 32, tokenSteps: true }),
  // The Hadamard rotation, against each format's default (on for q8_0/q4_0, off for f16 and KIVI; f16 is
  // the control: the rotation itself should cost nothing).
  kv('f16', 'f16', { rotate: true }),
  kv('q8_0', 'q8_0', { rotate: false }),
  kv('q4_0', 'q4_0', { rotate: false }),
  kv('q8_0', 'q4_0', { rotate: false }),
  kv('q4_0', 'q8_0', { rotate: false }),
  kivi('kivi2', { rotate: true }),
  kivi('kivi4', { rotate: true }),
];

export const REFERENCE = 'f32 (reference)';

export interface NoiseFloors {
  /** The native kernels on another thread count (the addon's process-wide setting). */
  threads?: { count: number; set: (n: number) => number; get: () => number };
  /** The same tokens fed in chunks of this many. */
  chunk?: number;
  /** The same file loaded on the other backend (reference <-> native). */
  otherBackend?: TransformerModel;
}

/** The reference first (it is what `against` defaults to), then the floors, then the formats named in `formats` (all by default). */
export function qualityConfigs(model: TransformerModel, floors: NoiseFloors, formats?: readonly string[]): QualityConfig[] {
  const f32 = (name: string, m = model) => kvConfig(name, m, (shape) => new StaticKVManager({ ...shape, ...F32_KV }));
  const configs: QualityConfig[] = [f32(REFERENCE), f32('f32')];
  if (floors.threads) configs.push(withThreads(f32(''), `f32, ${floors.threads.count} thread${floors.threads.count === 1 ? '' : 's'}`, floors.threads.count, floors.threads.set, floors.threads.get));
  if (floors.chunk) configs.push(rechunked(f32(''), `f32, chunks of ${floors.chunk}`, floors.chunk));
  if (floors.otherBackend) configs.push(f32(`f32, ${floors.otherBackend.backend.name} backend`, floors.otherBackend));
  for (const f of KV_FORMAT_CONFIGS) {
    if (formats && !formats.includes(f.name)) continue;
    const config = kvConfig(f.name, model, (shape) => new StaticKVManager({ ...shape, ...f.shape }));
    configs.push(f.step ? rechunked(config, f.name, f.step) : config);
  }
  const unknown = formats?.filter((name) => !KV_FORMAT_CONFIGS.some((f) => f.name === name)) ?? [];
  if (unknown.length > 0) {
    throw new Error(`unknown --formats ${unknown.join(', ')}; the harness knows ${KV_FORMAT_CONFIGS.map((f) => f.name).join(', ') || 'none yet'}`);
  }
  return configs;
}
