import { TokenBucket } from './token-bucket';

/**
 * Tokens a tenant's budget saves up: one. Every CRM request takes a token as it leaves, so requests go out evenly
 * spaced at the declared rate. A CRM counting requests in windows (fixed or sliding, aligned anywhere) then never
 * sees more than the rate × its window in one; any burst on top of that would be its 429s.
 */
export const REQUEST_BURST = 1;

/**
 * One tenant's CRM request budget, as the runner uses it: every request takes a token before it is sent, and the
 * tenant is paused when the CRM says so (a 429, a used-up quota). Asynchronous because the budget may be shared by
 * every runner of a tenant (../store/redis).
 */
export interface TenantRateLimit {
  /** Takes one token if there is one now (never while paused) and returns undefined; else when to ask again. */
  take(now: number): Promise<number | undefined>;
  /** No requests until then (a shorter pause never shortens a longer one). */
  pause(until: number): Promise<void>;
  /** When a token will be there (now or later; not before a pause ends). Takes nothing. */
  readyAt(now: number): Promise<number>;
}

/** Builds a tenant's budget; `requestsPerSecond` undefined: unlimited (only pauses apply). */
export type RateLimitFactory = (tenant: string, requestsPerSecond: number | undefined, now: number) => TenantRateLimit;

/** The budget of one runner process: an in-memory token bucket. */
export const localRateLimits: RateLimitFactory = (_tenant, requestsPerSecond, now) => {
  const bucket = new TokenBucket(requestsPerSecond, now, REQUEST_BURST);
  return {
    async take(at) {
      if (bucket.available(at) < 1) return bucket.readyAt(at);
      bucket.take(1, at);
      return undefined;
    },
    async pause(until) { bucket.pause(until); },
    async readyAt(at) { return bucket.readyAt(at); },
  };
};
