// A cache with a residual window (KIVI) takes at most C tokens of a sequence per kvStore, so that every
// token reads the positions its own window holds in f16 (backend.ts ResidualWindow). A batch with longer
// prefill chunks runs as several forward passes, each with at most C tokens of every slot, in order; the
// logits come back as one forward pass would return them.
import type { KVView } from '../backend/backend.js';
import type { Batch } from '../model/batch.js';
import type { TransformerModel } from '../model/transformer.js';

export function forwardInSlotChunks(model: TransformerModel, batch: Batch, kv: KVView): Float32Array {
  const most = kv.residual?.chunkTokens;
  const n = batch.tokens.length;
  // Round of each row: its index among its slot's rows, divided by C.
  const seen = new Map<number, number>();
  const round = new Int32Array(n);
  for (let i = 0; i < n; i++) {
    const k = seen.get(batch.slots[i]!) ?? 0;
    seen.set(batch.slots[i]!, k + 1);
    round[i] = most === undefined ? 0 : Math.floor(k / most);
  }
  const rounds = n === 0 ? 1 : Math.max(...round) + 1;
  if (rounds === 1) return model.forward(batch, kv);
  // Caches with a residual window cannot evict, so no sequence of theirs keeps fewer rows in a layer.
  if (batch.layerRows) throw new Error('forwardInSlotChunks: per-layer rows with a residual window');
  const vocab = model.config.vocabSize;
  const logits = new Float32Array(batch.logitRows.length * vocab);
  for (let r = 0; r < rounds; r++) {
    const picked = Array.from({ length: n }, (_, i) => i).filter((i) => round[i] === r);
    const local = new Map(picked.map((row, j) => [row, j]));
    const take = (a: Int32Array) => Int32Array.from(picked, (i) => a[i]!);
    const wanted = Array.from(batch.logitRows).map((row, out) => ({ row, out })).filter(({ row }) => local.has(row));
    const part = model.forward({
      tokens: take(batch.tokens),
      positions: take(batch.positions),
      ...(batch.rows ? { rows: take(batch.rows) } : {}),
      slots: take(batch.slots),
      logitRows: Int32Array.from(wanted, ({ row }) => local.get(row)!),
      ...(batch.scores ? { scores: { ...batch.scores, voters: take(batch.scores.voters) } } : {}),
    }, kv);
    wanted.forEach(({ out }, j) => logits.set(part.subarray(j * vocab, (j + 1) * vocab), out * vocab));
  }
  return logits;
}
