// Mixture-of-experts pieces on their own: routing (softmax, top-k, renormalisation, grouping by expert),
// the MoE feed-forward against a per-token computation written out by hand, expert views of 3-D
// tensors, and the expert variants vserve refuses by name. End-to-end agreement with llama.cpp is in
// arch-parity.test.ts (mixtral, qwen2moe, qwen3moe).
import assert from 'node:assert/strict';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { test } from 'node:test';
import { ARCH_SPECS, writeArchModel } from '../../bench/arch-models.js';
import type { Backend, Weight } from '../../src/backend/backend.js';
import { NativeBackend } from '../../src/backend/native/native-backend.js';
import { ReferenceBackend } from '../../src/backend/reference/reference-backend.js';
import { readModelConfig } from '../../src/model/architectures/index.js';
import { routeTokens } from '../../src/model/blocks/expert-router.js';
import { SwiGLUFeedForward } from '../../src/model/blocks/feed-forward.js';
import { type LayerStep, Scratch } from '../../src/model/blocks/layer-step.js';
import { type ExpertWeights, MoEFeedForward } from '../../src/model/blocks/moe-feed-forward.js';
import { GGUFFile } from '../../src/model/gguf/reader.js';
import { GGMLType, GGUFValueType } from '../../src/model/gguf/types.js';
import { ModelConfigError } from '../../src/model/model-config.js';
import { WeightLoader } from '../../src/model/weight-loader.js';

test('routing takes the k most probable experts in order, weighs them as llama.cpp does and groups the batch by expert', () => {
  // Token 0 prefers experts 2 then 0; token 1 prefers 2 then 3; token 2 prefers 1 then 3.
  const softmax = (row: number[]) => {
    const e = row.map((x) => Math.exp(x));
    const s = e.reduce((a, b) => a + b);
    return e.map((x) => x / s);
  };
  const p = [softmax([1, -1, 2, 0]), softmax([0, -2, 3, 1]), softmax([-1, 4, 0, 2])];
  const probs = Float32Array.from(p.flat());
  const q = (t: number, e: number) => probs[t * 4 + e]!;
  const r = routeTokens(probs, 3, { nExperts: 4, nUsed: 2, normalize: false });
  assert.deepEqual([...r.start], [0, 1, 2, 4, 6]);
  assert.deepEqual([...r.token], [0, 2, 0, 1, 1, 2]);
  // Slot 0 is each token's most probable expert.
  assert.deepEqual([...r.slot], [1, 0, 0, 0, 1, 1]);
  assert.deepEqual([...r.weight], [q(0, 0), q(2, 1), q(0, 2), q(1, 2), q(1, 3), q(2, 3)]);

  // Renormalised as llama.cpp: the chosen probabilities summed in f64 in slot order, rounded to f32, and
  // each divided by that in f32.
  const n = routeTokens(probs, 3, { nExperts: 4, nUsed: 2, normalize: true });
  const f32 = Math.fround;
  const sum0 = f32(q(0, 2) + q(0, 0));
  assert.equal(n.weight[0], f32(q(0, 0) / sum0));
  assert.equal(n.weight[2], f32(q(0, 2) / sum0));
  const sums = new Float64Array(3);
  n.token.forEach((t, i) => (sums[t] = sums[t]! + n.weight[i]!));
  for (const s of sums) assert.ok(Math.abs(s - 1) < 1e-6, `renormalised weights sum to ${s}`);
});

test('routing refuses more experts per token than there are', () => {
  assert.throws(() => routeTokens(new Float32Array(4), 1, { nExperts: 4, nUsed: 5, normalize: true }), RangeError);
});

/** Seeded weights and activations. */
function random(seed: number) {
  let s = seed;
  return (scale: number) => {
    s = (Math.imul(s, 1664525) + 1013904223) >>> 0;
    return (s / 0x100000000 - 0.5) * 2 * scale;
  };
}

function f32Weight(b: Backend, name: string, rows: number, cols: number, rnd: (s: number) => number, scale: number): { w: Weight; v: Float32Array } {
  const v = Float32Array.from({ length: rows * cols }, () => rnd(scale));
  return { w: b.createWeight(name, GGMLType.F32, rows, cols, new Uint8Array(v.buffer.slice(0))), v };
}

function matvec(v: Float32Array, rows: number, cols: number, x: ArrayLike<number>): Float64Array {
  const out = new Float64Array(rows);
  for (let r = 0; r < rows; r++) for (let c = 0; c < cols; c++) out[r] = out[r]! + v[r * cols + c]! * x[c]!;
  return out;
}

function mlp(g: Float32Array, u: Float32Array, d: Float32Array, dim: number, width: number, x: ArrayLike<number>): Float64Array {
  const a = matvec(g, width, dim, x), b = matvec(u, width, dim, x);
  const act = a.map((z, i) => (z / (1 + Math.exp(-z))) * b[i]!);
  return matvec(d, dim, width, act);
}

for (const backend of [new ReferenceBackend(), new NativeBackend({ threads: 2 })]) {
  test(`MoE feed-forward matches a per-token computation (${backend.name} backend, shared expert, out aliasing h)`, () => {
    const dim = 32, width = 64, nExperts = 4, n = 9;
    const rnd = random(7);
    const router = f32Weight(backend, 'router', nExperts, dim, rnd, 0.5);
    const raw = Array.from({ length: nExperts }, (_, e) => ({
      gate: f32Weight(backend, `gate${e}`, width, dim, rnd, 0.3),
      up: f32Weight(backend, `up${e}`, width, dim, rnd, 0.3),
      down: f32Weight(backend, `down${e}`, dim, width, rnd, 0.3),
    }));
    const experts: ExpertWeights[] = raw.map((x) => ({ gate: x.gate.w, up: x.up.w, down: x.down.w }));
    const sg = f32Weight(backend, 'sgate', width, dim, rnd, 0.3), su = f32Weight(backend, 'sup', width, dim, rnd, 0.3), sd = f32Weight(backend, 'sdown', dim, width, rnd, 0.3);
    const sharedGate = Float32Array.from({ length: dim }, () => rnd(0.3));
    const h = Float32Array.from({ length: n * dim }, () => rnd(1));

    for (const normalize of [true, false]) {
      for (const withShared of [false, true]) {
        const moe = new MoEFeedForward({
          router: router.w, experts, nUsed: 2, normalize,
          shared: withShared ? { ffn: new SwiGLUFeedForward(sg.w, su.w, sd.w), gate: sharedGate } : undefined,
        });
        const x = h.slice();
        const step = { backend, n, scratch: new Scratch() } as unknown as LayerStep;
        moe.forward(x, x, step);
        const perExpert = new Int32Array(nExperts);
        for (let t = 0; t < n; t++) {
          const row = h.subarray(t * dim, (t + 1) * dim);
          const logits = [...matvec(router.v, nExperts, dim, row)];
          const p = logits.map((z) => Math.exp(z - Math.max(...logits)));
          const total = p.reduce((a, b) => a + b);
          const chosen = [...p.keys()].sort((a, b) => p[b]! - p[a]!).slice(0, 2);
          const picked = chosen.reduce((a, e) => a + p[e]! / total, 0);
          const want = new Float64Array(dim);
          for (const e of chosen) {
            perExpert[e]!++;
            const y = mlp(raw[e]!.gate.v, raw[e]!.up.v, raw[e]!.down.v, dim, width, row);
            const w = p[e]! / total / (normalize ? picked : 1);
            y.forEach((v, i) => (want[i] = want[i]! + w * v));
          }
          if (withShared) {
            const y = mlp(sg.v, su.v, sd.v, dim, width, row);
            const z = row.reduce((a, v, i) => a + v * sharedGate[i]!, 0);
            y.forEach((v, i) => (want[i] = want[i]! + v / (1 + Math.exp(-z))));
          }
          want.forEach((v, i) => assert.ok(Math.abs(x[t * dim + i]! - v) < 1e-4 * (1 + Math.abs(v)), `token ${t} dim ${i}: ${x[t * dim + i]} vs ${v}`));
        }
        assert.ok(perExpert.some((c) => c >= 3), `some expert should take several tokens of the batch (${[...perExpert]})`);
      }
    }
  });
}

test('expert weights are views of each expert\'s slice of the 3-D tensor, on both backends', () => {
  const dir = mkdtempSync(join(tmpdir(), 'vserve-moe-'));
  const spec = ARCH_SPECS.find((s) => s.name === 'qwen2moe')!;
  try {
    for (const type of [GGMLType.F32, GGMLType.Q8_0, GGMLType.Q4_K]) {
      const path = writeArchModel(join(dir, `m${type}.gguf`), spec, type);
      const file = GGUFFile.open(path);
      try {
        const info = file.tensor('blk.1.ffn_down_exps.weight')!;
        const [cols, rows, count] = info.dims as [number, number, number];
        const whole = new ReferenceBackend().createWeight('whole', info.type, rows * count, cols, file.tensorBytes(info));
        const all = new ReferenceBackend().toFloat32(whole);
        for (const backend of [new ReferenceBackend(), new NativeBackend({ threads: 1 })]) {
          const experts = new WeightLoader(file, backend, 'qwen2moe').experts(info.name, cols, rows, count);
          assert.equal(experts.length, count);
          experts.forEach((w, e) => {
            assert.equal(w.rows, rows);
            assert.equal(w.cols, cols);
            assert.deepEqual(backend.toFloat32(w), all.subarray(e * rows * cols, (e + 1) * rows * cols), `${backend.name} expert ${e}`);
          });
          assert.throws(() => new WeightLoader(file, backend, 'qwen2moe').experts(info.name, cols, rows, count + 1), ModelConfigError);
          backend.close();
        }
      } finally {
        file.close();
      }
    }
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
});

test('expert variants vserve does not run are refused by name', () => {
  const dir = mkdtempSync(join(tmpdir(), 'vserve-moe-'));
  const base = ARCH_SPECS.find((s) => s.name === 'qwen3moe')!;
  const cases: [string, (w: Parameters<NonNullable<typeof base.metadata>>[0]) => void, RegExp][] = [
    ['groups', (w) => w.setUint32('qwen3moe.expert_group_count', 2), /expert_group_count = 2/],
    ['too many used', (w) => w.setUint32('qwen3moe.expert_used_count', 9), /expert_used_count 9 exceeds expert_count 4/],
    ['per-layer counts', (w) => w.set('qwen3moe.expert_used_count', { type: GGUFValueType.ARRAY, elemType: GGUFValueType.UINT32, value: Uint32Array.of(2, 2) }), /per-layer array/],
    ['no experts', (w) => w.setUint32('qwen3moe.expert_count', 0), /expert_count is missing or 0/],
  ];
  try {
    for (const [what, edit, message] of cases) {
      const path = writeArchModel(join(dir, 'm.gguf'), { ...base, metadata: (w, s) => (base.metadata?.(w, s), edit(w)) }, GGMLType.F32);
      const file = GGUFFile.open(path);
      try {
        assert.throws(() => readModelConfig(file), (e: unknown) => e instanceof ModelConfigError && message.test(e.message), what);
      } finally {
        file.close();
      }
    }
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
});
