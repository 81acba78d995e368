// An estimate of the machine's peak f32 FMA rate, the ceiling for compute-bound kernels (prefill):
//   cores × clock × FMA pipes × SIMD lanes × 2 flops per FMA.
// The clock is the nominal one /proc/cpuinfo reports (turbo can exceed it, so fractions above 100%
// are possible); 2 FMA pipes per core is true of every x86 core since Haswell / Zen 1; lanes follow
// the ISA the native kernels use (AVX-512: 16, AVX2: 8, else 4). Integer dot-product paths (int8
// VNNI for quantized weights) can do more operations per cycle than this f32 figure.
import { readFileSync } from 'node:fs';

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
