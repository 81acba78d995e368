// The native core's environment variables, checked before the addon loads: a typo must be an error that
// says what is wrong and what is valid, not a value the C++ side silently ignores or a hint to rebuild.

/** Every kernel set the addon can be built with (which of them this CPU runs is the addon's answer). */
export const ISA_NAMES = ['portable', 'avx2', 'avx512', 'avx512-amx', 'avx512-amx-bf16', 'neon'] as const;

/** The most compute threads the native pool takes (native/runtime.cc setThreads). */
export const MAX_THREADS = 1024;

/** The problem with VSERVE_ISA / VSERVE_THREADS in `env`, or undefined when both are unset or valid. */
export function nativeEnvProblem(env: NodeJS.ProcessEnv = process.env): string | undefined {
  const isa = env.VSERVE_ISA;
  if (isa && !(ISA_NAMES as readonly string[]).includes(isa)) {
    return `VSERVE_ISA=${isa} is not a kernel set vserve knows; valid names: ${ISA_NAMES.join(', ')} (unset it to use the best one this CPU has)`;
  }
  const threads = env.VSERVE_THREADS;
  if (threads !== undefined && threads !== '' && !(/^\d+$/.test(threads.trim()) && Number(threads) >= 1 && Number(threads) <= MAX_THREADS)) {
    return `VSERVE_THREADS must be a whole number of compute threads from 1 to ${MAX_THREADS}, got "${threads}" (unset it for one per physical core)`;
  }
  return undefined;
}
