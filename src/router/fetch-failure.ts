// Why a fetch to a replica failed, in words for the log and for a client's error: undici's own message
// ("fetch failed", "terminated") says little; its cause (ECONNREFUSED, a reset socket) says what happened.

export function fetchFailure(e: unknown): string {
  const err = e as (Error & { cause?: { code?: string; message?: string } }) | undefined;
  const cause = err?.cause?.code ?? err?.cause?.message;
  const message = err?.message ?? String(e);
  return cause && cause !== message ? `${message} (${cause})` : message;
}
