// Bytes a decode step must read from memory: every weight matrix once, except the token embedding
// table, of which only one row is gathered, and of a mixture of experts only the experts a token uses;
// plus the KV cache up to the current position. Bandwidth divided by this is the decode speed no engine
// can beat on a weight-bound model.
import { GGUFFile } from '../src/model/gguf/reader.js';
import { readModelConfig } from '../src/model/architectures/index.js';

export interface DecodeTraffic {
  fileBytes: number;
  /** All tensor bytes. */
  weightBytes: number;
  embeddingBytes: number;
  /** Weight bytes read per decoded token (all but the embedding table; of experts, the used ones). */
  weightBytesPerToken: number;
  /** KV bytes per position per token (K and V, all layers) at `kvElemBytes` per element. */
  kvBytesPerPosition: number;
  /** Multiply-adds per token of every weight matrix a token goes through (all but a gathered embedding). */
  matmulMacsPerToken: number;
  /** Multiply-adds per token per earlier position in attention (q.k and weights.v, all layers and heads). */
  attentionMacsPerPosition: number;
}

export function decodeTraffic(path: string, kvElemBytes: number): DecodeTraffic {
  const f = GGUFFile.open(path);
  try {
    const c = readModelConfig(f);
    const weightBytes = f.tensors.reduce((n, t) => n + t.nBytes, 0);
    const embeddingBytes = f.tensor('token_embd.weight')?.nBytes ?? 0;
    // With tied embeddings the table is also the output matrix and is read whole.
    const tied = !f.tensor('output.weight');
    const matrices = f.tensors.filter((t) => t.dims.length === 2 && (tied || t.name !== 'token_embd.weight'));
    // Stacked experts ([cols, rows, experts]): a token goes through `used` of them.
    const experts = (c as { experts?: { count: number; used: number } }).experts;
    const stacked = f.tensors.filter((t) => t.dims.length === 3);
    const unusedExpertBytes = experts ? stacked.reduce((n, t) => n + t.nBytes * (1 - experts.used / experts.count), 0) : 0;
    const expertMacs = experts ? stacked.reduce((n, t) => n + t.dims[0]! * t.dims[1]! * experts.used, 0) : 0;
    return {
      fileBytes: f.fileSize,
      weightBytes,
      embeddingBytes,
      weightBytesPerToken: (tied ? weightBytes : weightBytes - embeddingBytes) - unusedExpertBytes,
      kvBytesPerPosition: 2 * c.nLayers * c.nKVHeads * c.headDim * kvElemBytes,
      matmulMacsPerToken: matrices.reduce((n, t) => n + t.dims[0]! * t.dims[1]!, 0) + expertMacs,
      attentionMacsPerPosition: 2 * c.nLayers * c.nHeads * c.headDim,
    };
  } finally {
    f.close();
  }
}

/** Bytes per decoded token at an average context of `positions` tokens. */
export function bytesPerDecodedToken(t: DecodeTraffic, positions: number): number {
  return t.weightBytesPerToken + t.kvBytesPerPosition * positions;
}

/** Arithmetic (2 ops per multiply-add) of prefilling an n-token prompt from an empty context, per token. */
export function prefillOpsPerToken(t: DecodeTraffic, n: number): number {
  return 2 * (t.matmulMacsPerToken + t.attentionMacsPerPosition * (n + 1) / 2);
}
