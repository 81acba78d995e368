// A tier read returns one multi-megabyte buffer per block, and a prompt's blocks stay alive together
// until the pool takes them. glibc by default gives such memory back to the kernel once freed, so every
// read faults fresh pages in one at a time; native/heap_retention.cc has it keep freed memory instead.
import { loadNativeAddon } from '../../backend/native/addon.js';

/** Freed memory the process keeps for later reads: several prompts' blocks of a 1B-class model. */
const RETAINED_BYTES = 256 * 2 ** 20;

let applied = false;

/** Keeps up to RETAINED_BYTES of freed heap mapped for the tiers' reads (once per process). */
export function retainFreedHeapForTierReads(): void {
  if (applied) return;
  applied = true;
  try {
    loadNativeAddon().retainFreedHeap(RETAINED_BYTES);
  } catch {
    // Without a loadable addon the tiers still work; their reads only fault their pages in.
  }
}
