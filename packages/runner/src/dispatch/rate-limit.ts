import { TokenBucket } from './token-bucket';

/**
 * One tenant's CRM request budget, as the dispatcher uses it: it takes tokens before claiming (one per sync), gives
 * back what it could not use, charges a sync's further calls when it ends, and pauses the tenant when the CRM says
 * so (429). Asynchronous because the budget may be shared by every runner of a tenant (../store/redis).
 */
export interface TenantRateLimit {
  /** Takes up to `want` tokens now and returns how many it got (0 while paused). */
  take(want: number, now: number): Promise<number>;
  /** Gives back tokens taken but not used. */
  refund(n: number, now: number): Promise<void>;
  /** Charges calls already made; the budget may go into debt. */
  charge(n: number, now: number): Promise<void>;
  /** No calls until then (a shorter pause never shortens a longer one). */
  pause(until: number): Promise<void>;
  /** When at least one token will be available. */
  readyAt(now: number): Promise<number>;
}

/** Builds a tenant's budget; `requestsPerSecond` undefined: unlimited (only pauses apply). */
export type RateLimitFactory = (tenant: string, requestsPerSecond: number | undefined, now: number) => TenantRateLimit;

/** The budget of one runner process: an in-memory token bucket. */
export const localRateLimits: RateLimitFactory = (_tenant, requestsPerSecond, now) => {
  const bucket = new TokenBucket(requestsPerSecond, now);
  return {
    async take(want, at) {
      const n = Math.min(want, bucket.available(at));
      bucket.take(n, at);
      return n;
    },
    async refund(n, at) { bucket.take(-n, at); },
    async charge(n, at) { bucket.take(n, at); },
    async pause(until) { bucket.pause(until); },
    async readyAt(at) { return bucket.readyAt(at); },
  };
};
