import type { RetryPolicy } from './api';

export const DEFAULT_RETRY_POLICY: RetryPolicy = { baseMs: 10_000, maxMs: 3_600_000, budgetMs: 24 * 3_600_000 };

export type RetryDecision = { retryAt: number; delayMs: number } | { deadLetter: true };

/**
 * Exponential backoff with full jitter (a random delay between 0 and base·2^(n-1), capped at maxMs), never sooner
 * than the CRM's Retry-After. Once the next try would land past the budget counted from the first failure, give up.
 */
export function decideRetry(opts: {
  policy: RetryPolicy;
  /** Failed attempts so far, this one included (≥ 1). */
  failures: number;
  /** When the run of failures began (this failure's time if it is the first). */
  failingSince: number;
  now: number;
  retryAfterMs?: number;
  random?: () => number;
}): RetryDecision {
  const { policy, failures, failingSince, now } = opts;
  const ceiling = Math.min(policy.maxMs, policy.baseMs * 2 ** Math.min(failures - 1, 52));
  const jittered = Math.round((opts.random ?? Math.random)() * ceiling);
  const delayMs = Math.max(jittered, opts.retryAfterMs ?? 0);
  if (now + delayMs - failingSince > policy.budgetMs) return { deadLetter: true };
  return { retryAt: now + delayMs, delayMs };
}
