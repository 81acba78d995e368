// A progress bar for loading a model, shown on stderr only where it helps: files of a gigabyte or more
// (small ones load before a bar could be read).
import { statSync } from 'node:fs';
import { ProgressBar } from './progress-bar.js';

const SHOW_FROM_BYTES = 1e9;

/** A progress callback drawing a bar for the model at `path`, or undefined for small files. */
export function loadProgress(path: string): ((done: number, total: number) => void) | undefined {
  let size = 0;
  try {
    size = statSync(path).size;
  } catch {
    return undefined; // the load itself reports a missing file
  }
  if (size < SHOW_FROM_BYTES) return undefined;
  let bar: ProgressBar | undefined;
  let shown = 0;
  return (done, total) => {
    bar ??= new ProgressBar('loading', total);
    bar.add(done - shown);
    shown = done;
    if (done >= total) bar.finish();
  };
}
