const RETRY_CAP_MS = 60 * 60 * 1000;

/** Exponential backoff with equal jitter: at least half of base x 2^(attempt-1), so a burst of retries spreads out yet still backs off. */
export function retryDelayMs(attempt: number, baseMs: number, random: () => number = Math.random): number {
  const ceiling = Math.min(RETRY_CAP_MS, baseMs * 2 ** (attempt - 1));
  return Math.round(ceiling / 2 + random() * (ceiling / 2));
}
