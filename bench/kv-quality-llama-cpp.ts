// llama.cpp's own KV cache types on the same texts, as configurations of the KV quality harness.
//
// What node-llama-cpp 3.22.1 gives: `sequence.controlledEvaluate(tokens)` with `generateNext: { logits:
// true }` on a token returns the raw logits of the next token over the whole vocabulary (a Map sorted
// by logit, from llama_get_logits_ith; with the default temperature 0 the sampler chain is greedy and
// removes no candidate), for every position asked, so the full KL is computable. (`probabilities: true`
// gives the full softmax too; `evaluateWithMetadata` only the sampled token's.)
//
// What llama.cpp allows: a quantized V cache needs flash attention, and its flash attention casts an f32
// cache to f16 before attending (an f32 cache with it gives the same logits as an f16 one, measured), so
// the llama.cpp reference is f32 with flash attention off, and every llama.cpp type is compared with it.
// Quantized types quantize each head's row in blocks of 32, so they need a head dimension that is a
// multiple of 32 (the bundled model's is 8: only f32 and f16 apply there).
import type { LlamaModel as PeerModel, Token } from 'node-llama-cpp';
import type { QualityConfig } from './kv-quality-run.js';
import { loadLlamaCppModel, NODE_LLAMA_CPP_VERSION } from './single/llama-cpp.js';

type PeerType = 'f32' | 'f16' | 'q8_0' | 'q4_0';
const GGML_NAMES: Record<PeerType, 'F32' | 'F16' | 'Q8_0' | 'Q4_0'> = { f32: 'F32', f16: 'F16', q8_0: 'Q8_0', q4_0: 'Q4_0' };
const BLOCK_VALUES: Record<PeerType, number> = { f32: 1, f16: 1, q8_0: 32, q4_0: 32 };

export const LLAMA_CPP_REFERENCE = 'llama.cpp f32';
/** K/V type pairs measured by default ("k/v", or one name for both). */
export const DEFAULT_PEER_TYPES = ['f16', 'q8_0', 'q4_0', 'q8_0/q4_0'];

export interface LlamaCppQuality {
  configs: QualityConfig[];
  /** Pairs not measured, and why. */
  skipped: { name: string; reason: string }[];
  version: string;
  close(): Promise<void>;
}

function parsePair(spec: string): { k: PeerType; v: PeerType } {
  const [k, v = k] = spec.split('/') as [string, string?];
  const ok = (t: string): t is PeerType => Object.hasOwn(GGML_NAMES, t);
  if (!ok(k) || !ok(v)) throw new Error(`unknown --peer-types entry "${spec}"; use f32, f16, q8_0, q4_0 or k/v pairs such as q8_0/q4_0`);
  return { k, v };
}

/** As vserve names its KV types: "q8_0", or "q8_0/q4_0" for K/V. */
const label = (p: { k: PeerType; v: PeerType }) => (p.k === p.v ? p.k : `${p.k}/${p.v}`);

/** One llama.cpp context per text, read teacher-forced through controlledEvaluate. */
function peerConfig(model: PeerModel, name: string, against: string, pair: { k: PeerType; v: PeerType }, flash: boolean, threads: number, chunk: number, vocabSize: number): QualityConfig {
  return {
    name,
    against,
    open: async (tokens) => {
      const context = await model.createContext({
        contextSize: tokens,
        batchSize: chunk,
        sequences: 1,
        threads: { ideal: threads, min: threads },
        flashAttention: flash,
        experimentalKvCacheKeyType: GGML_NAMES[pair.k],
        experimentalKvCacheValueType: GGML_NAMES[pair.v],
      });
      const sequence = context.getSequence();
      return {
        async feed(ids, start) {
          if (sequence.nextTokenIndex !== start) throw new Error(`${name}: the sequence is at ${sequence.nextTokenIndex}, the chunk starts at ${start}`);
          const out = await sequence.controlledEvaluate(Array.from(ids, (t) => [t as Token, { generateNext: { logits: true } }]));
          const logits = new Float32Array(ids.length * vocabSize);
          for (let r = 0; r < ids.length; r++) {
            const row = out[r]?.next.logits;
            if (!row || row.size !== vocabSize) throw new Error(`${name}: row ${start + r} has ${row?.size ?? 0} logits, not the vocabulary's ${vocabSize}`);
            for (const [token, logit] of row) logits[r * vocabSize + token] = logit;
          }
          return logits;
        },
        close: () => context.dispose(),
      };
    },
  };
}

/**
 * llama.cpp on the same file: its f32 cache against vserve's reference (`vserveReference`), a second run
 * of it and each of `types` against llama.cpp's f32; `unavailable` says why not when it cannot run.
 */
export async function llamaCppConfigs(
  path: string, vserveReference: string, types: readonly string[], opts: { threads: number; chunk: number; vocabSize: number; headDim: number },
): Promise<LlamaCppQuality | { unavailable: string }> {
  let model: PeerModel;
  try {
    model = await loadLlamaCppModel(path);
  } catch (e) {
    const missing = (e as { code?: string }).code === 'ERR_MODULE_NOT_FOUND' && String(e).includes('node-llama-cpp');
    return { unavailable: missing ? 'node-llama-cpp is not installed (npm run bench:setup)' : `node-llama-cpp could not load the model: ${e instanceof Error ? e.message : String(e)}` };
  }
  const make = (name: string, against: string, pair: { k: PeerType; v: PeerType }, flash: boolean) =>
    peerConfig(model, name, against, pair, flash, opts.threads, opts.chunk, opts.vocabSize);
  // A second run of llama.cpp's reference is its own noise floor: its types are judged against it.
  const configs = [
    make(LLAMA_CPP_REFERENCE, vserveReference, { k: 'f32', v: 'f32' }, false),
    make(`${LLAMA_CPP_REFERENCE}, second run`, LLAMA_CPP_REFERENCE, { k: 'f32', v: 'f32' }, false),
  ];
  const skipped: { name: string; reason: string }[] = [];
  for (const spec of types) {
    const pair = parsePair(spec);
    // The unquantized types run without flash attention too, which shows what the kernel alone changes.
    const quantized = BLOCK_VALUES[pair.k] > 1 || BLOCK_VALUES[pair.v] > 1;
    const name = `llama.cpp ${label(pair)}, flash attn`;
    const misfit = [pair.k, pair.v].find((t) => opts.headDim % BLOCK_VALUES[t] !== 0);
    if (misfit) {
      skipped.push({ name, reason: `llama.cpp quantizes each head's row in blocks of ${BLOCK_VALUES[misfit]} values; this model's head dimension is ${opts.headDim}` });
      continue;
    }
    if (!quantized && !(pair.k === 'f32' && pair.v === 'f32')) configs.push(make(`llama.cpp ${label(pair)}`, LLAMA_CPP_REFERENCE, pair, false));
    configs.push(make(name, LLAMA_CPP_REFERENCE, pair, true));
  }
  return { configs, skipped, version: NODE_LLAMA_CPP_VERSION, close: () => model.dispose() };
}
