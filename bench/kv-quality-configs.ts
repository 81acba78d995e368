// Which configurations the KV quality harness measures: the f32 reference, the noise floors (the same
// f32 cache computed another way, which bounds what a difference below it can mean), and the lossy KV
// configurations, each compared with the reference unless it names another.
import { KIVI_TYPES, kvTypeLabel, type KIVIName, type KVFormatName } from '../src/kv/format.js';
import { StaticKVManager, type KVShape } from '../src/kv/index.js';
import type { LlamaModel } from '../src/model/llama.js';
import { kvConfig, rechunked, withThreads, type QualityConfig } from './kv-quality-run.js';

/** The cache every configuration is measured against, and the one the texts are generated with (explicit: the managers' default is f16). */
const F32_KV: Partial<KVShape> = { type: { k: 'f32', v: 'f32' } };

/** A KV type as a configuration, named as the CLI's --kv-type shows it ("q8_0", "kivi2", or "q8_0/q4_0" for K/V). */
const kvType = (k: KVFormatName, v: KVFormatName = k) => ({ name: kvTypeLabel({ k, v }), shape: { type: { k, v } } });
/**
 * KIVI with `residual` newest tokens kept in f16 (undefined: its default, DEFAULT_KIVI_RESIDUAL), read a
 * chunk at a time or, with `tokenSteps`, one token per forward pass as decoding does: a chunk's own rows
 * may be encoded before its attention reads them, which one-token steps never see.
 */
function kivi(name: KIVIName, residual?: number, tokenSteps = false): FormatConfig {
  const notes = [...(residual === undefined ? [] : [`residual ${residual}`]), ...(tokenSteps ? ['1-token steps'] : [])];
  return {
    name: notes.length > 0 ? `${name} (${notes.join('; ')})` : name,
    shape: { type: KIVI_TYPES[name], ...(residual === undefined ? {} : { residual }) },
    ...(tokenSteps ? { step: 1 } : {}),
  };
}

export interface FormatConfig {
  /** Unique; what --formats selects. */
  name: string;
  /** What the KV manager is built with on top of the model's one-slot shape. */
  shape: Partial<KVShape>;
  /** Tokens per forward pass when not the harness's chunk. */
  step?: number;
}

/** The KV formats measured against f32: one line per configuration. */
export const KV_FORMAT_CONFIGS: readonly FormatConfig[] = [
  // ---- KV formats: one line each ----
  kvType('f16'),
  kvType('q8_0'),
  kvType('q4_0'),
  // Mixed: which of K and V is the more sensitive (keys are, as reported for llama.cpp; DESIGN.md §5).
  kvType('q8_0', 'q4_0'),
  kvType('q4_0', 'q8_0'),
  kvType('f16', 'q8_0'),
  kvType('q8_0', 'f16'),
  kvType('f16', 'q4_0'),
  kvType('q4_0', 'f16'),
  // KIVI: keys per channel, values per token, 2 or 4 bits, the newest 128 tokens in f16 by default.
  kivi('kivi2'),
  kivi('kivi4'),
  kivi('kivi2', undefined, true),
  kivi('kivi4', undefined, true),
  kivi('kivi2', 32),
  kivi('kivi4', 32),
  kivi('kivi2', 32, true),
  kivi('kivi4', 32, true),
];

export const REFERENCE = 'f32 (reference)';

export interface NoiseFloors {
  /** The native kernels on another thread count (the addon's process-wide setting). */
  threads?: { count: number; set: (n: number) => number; get: () => number };
  /** The same tokens fed in chunks of this many. */
  chunk?: number;
  /** The same file loaded on the other backend (reference <-> native). */
  otherBackend?: LlamaModel;
}

/** The reference first (it is what `against` defaults to), then the floors, then the formats named in `formats` (all by default). */
export function qualityConfigs(model: LlamaModel, floors: NoiseFloors, formats?: readonly string[]): QualityConfig[] {
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
