// The machine's arithmetic peak: measured by the native addon where it can (measurePeakCompute), else
// an estimate of the peak f32 FMA rate, the ceiling for compute-bound kernels (prefill):
//   cores × clock × FMA pipes × SIMD lanes × 2 flops per FMA.
// The clock is the nominal one /proc/cpuinfo reports (turbo can exceed it, so fractions above 100%
// are possible); 2 FMA pipes per core is true of every x86 core since Haswell / Zen 1; lanes follow
// the ISA the native kernels use (AVX-512: 16, AVX2: 8, else 4). Integer dot-product paths (int8
// VNNI for quantized weights) can do more operations per cycle than this f32 figure.
import { readFileSync } from 'node:fs';
import { loadNativeAddon } from '../src/backend/native/addon.js';

export interface PeakFlopsEstimate {
  gflops: number;
  cores: number;
  ghz: number;
  lanes: number;
  fmaPipes: number;
  how: string;
}

function nominalGHz(): number {
  try {
    const m = /cpu MHz\s*:\s*([\d.]+)/.exec(readFileSync('/proc/cpuinfo', 'utf8'));
    if (m) return Number(m[1]) / 1000;
  } catch {
    // not Linux
  }
  return NaN;
}

export function estimatePeakFlops(cores: number, isa: string | undefined): PeakFlopsEstimate {
  const ghz = nominalGHz();
  const lanes = isa?.includes('512') ? 16 : isa?.includes('avx2') ? 8 : 4;
  const fmaPipes = 2;
  return {
    gflops: cores * ghz * fmaPipes * lanes * 2,
    cores, ghz, lanes, fmaPipes,
    how: `${cores} cores × ${ghz} GHz (nominal) × ${fmaPipes} FMA pipes × ${lanes} f32 lanes (${isa ?? 'unknown ISA'}) × 2 flops/FMA`,
  };
}

/** The machine's arithmetic peak as measured by the native addon's register-only loops. */
export interface MeasuredPeak {
  isa: string;
  threads: number;
  f32Gflops: number;
  /** int8 dot products (NaN where the ISA in use has no probe). */
  int8Gops: number;
}

/** Measures the peak on `threads` threads with the addon, or undefined when it is not built. */
export function measurePeakCompute(threads: number): MeasuredPeak | undefined {
  try {
    const r = loadNativeAddon().peakCompute(threads);
    if (!Number.isFinite(r.f32Flops)) return undefined;
    return { isa: r.isa, threads: r.threads, f32Gflops: r.f32Flops / 1e9, int8Gops: r.int8Ops / 1e9 };
  } catch {
    return undefined;
  }
}
