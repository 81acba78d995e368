// Where benchmarks keep generated models and write results, relative to the repository root (found
// from this module's location, dist/bench/, so the working directory does not matter).
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';

export const repoRoot = join(dirname(fileURLToPath(import.meta.url)), '..', '..');
/** Generated benchmark models (git-ignored, never committed). */
export const modelCacheDir = join(repoRoot, '.cache', 'models');
/** Benchmark reports (git-ignored). */
export const resultsDir = join(repoRoot, 'bench', 'results');
