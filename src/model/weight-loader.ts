// Loads a model's tensors onto a backend by name, checking each one's shape against the
// hyperparameters and its type against what the backend runs, so a bad file fails at load with the
// tensor named rather than mid-generation.
import type { Backend, Weight } from '../backend/backend.js';
import type { GGUFFile, GGUFTensorInfo } from './gguf/reader.js';
import { typeName } from './gguf/types.js';
import { ModelConfigError } from './model-config.js';

export class WeightLoader {
  readonly where: string;
  /** Every matrix loaded so far with its size, for readying them all once the model is assembled. */
  readonly matrices: { weight: Weight; bytes: number }[] = [];

  constructor(readonly file: GGUFFile, readonly backend: Backend, readonly arch: string) {
    this.where = file.path ?? 'model';
  }

  has(name: string): boolean {
    return this.file.tensor(name) !== undefined;
  }

  /** The tensor's info after checking its dims are exactly `dims` (ggml order) and its type runs here. */
  tensor(name: string, dims: readonly number[]): GGUFTensorInfo {
    const t = this.file.tensor(name);
    if (!t) throw new ModelConfigError(`${this.where}: tensor "${name}" is missing`);
    if (t.dims.length !== dims.length || t.dims.some((d, i) => d !== dims[i])) {
      throw new ModelConfigError(`${this.where}: tensor "${name}" has shape [${t.dims.join(', ')}], the ${this.arch} hyperparameters need [${dims.join(', ')}]`);
    }
    if (!this.backend.weightTypes.has(t.type)) {
      const runs = [...this.backend.weightTypes].map((x) => typeName(x)).join(', ');
      throw new ModelConfigError(`${this.where}: tensor "${name}" has type ${typeName(t.type)} (ggml type ${t.type}), which the ${this.backend.name} backend cannot run (it runs ${runs})`);
    }
    return t;
  }

  /** A matrix of `rows` outputs by `cols` inputs (ggml dims [cols, rows]). */
  matrix(name: string, cols: number, rows: number): Weight {
    return this.load(this.tensor(name, [cols, rows]));
  }

  /**
   * A tensor that stacks several matrices by rows (fused QKV, gate+up) as one weight per part, in
   * order: part i is `rows[i]` rows of `cols` inputs. Each part is a byte range of the tensor, so
   * nothing is copied and each runs as if it had been stored on its own.
   */
  matrixParts(name: string, cols: number, rows: readonly number[]): Weight[] {
    const total = rows.reduce((a, b) => a + b, 0);
    const t = this.tensor(name, [cols, total]);
    const rowBytes = t.nBytes / total;
    let start = 0;
    return rows.map((n) => {
      const part = { ...t, name: `${name}[rows ${start}..${start + n - 1}]`, dims: [cols, n], offset: t.offset + start * rowBytes, fileOffset: t.fileOffset + start * rowBytes, nElements: cols * n, nBytes: n * rowBytes };
      start += n;
      return this.load(part);
    });
  }

  optionalMatrix(name: string, cols: number, rows: number): Weight | undefined {
    return this.has(name) ? this.matrix(name, cols, rows) : undefined;
  }

  /**
   * A stack of `count` expert matrices of `rows` outputs by `cols` inputs (ggml dims [cols, rows, count]),
   * one Weight per expert. Each expert's matrix is a contiguous slice of the tensor, so each Weight is a
   * view of that slice (no copy where the backend maps the file).
   */
  experts(name: string, cols: number, rows: number, count: number): Weight[] {
    const t = this.tensor(name, [cols, rows, count]);
    const bytes = t.nBytes / count;
    return Array.from({ length: count }, (_, e) =>
      this.load({
        name: `${name}[${e}]`,
        dims: [cols, rows],
        type: t.type,
        offset: t.offset + e * bytes,
        fileOffset: t.fileOffset + e * bytes,
        nElements: cols * rows,
        nBytes: bytes,
      }),
    );
  }

  /** Loads a checked matrix (or a slice of one) and records it for readying at the end of the load. */
  private load(info: GGUFTensorInfo): Weight {
    const w = this.backend.loadWeight(this.file, info);
    this.matrices.push({ weight: w, bytes: info.nBytes });
    return w;
  }

  /** A vector (norm weights, biases) as f32. */
  vector(name: string, len: number): Float32Array {
    const w = this.backend.loadWeight(this.file, this.tensor(name, [len]));
    return warnIfNonFinite(this.where, name, this.backend.toFloat32(w));
  }

  optionalVector(name: string, len: number): Float32Array | undefined {
    return this.has(name) ? this.vector(name, len) : undefined;
  }
}

/** Norm and bias vectors are small enough to check at load: NaN or Inf there makes every logit NaN. */
function warnIfNonFinite(where: string, name: string, v: Float32Array): Float32Array {
  const bad = v.findIndex((x) => !Number.isFinite(x));
  if (bad >= 0) process.emitWarning(`${where}: tensor "${name}" holds a non-finite value (${v[bad]} at index ${bad}); generation will fail`, 'ModelWarning');
  return v;
}
