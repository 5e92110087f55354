import type { RateLimitInfo, RequestPacer } from '@crm-sync/core';
import type { Clock } from '../clock';
import type { TenantRateLimit } from './rate-limit';

/** What the CRM's latest answers left of its quota, less the requests in flight when they were read. */
interface Quota {
  left: number;
  resetAt: number;
}

/**
 * Paces every CRM request of one tenant (the engine calls it around each request of each sync):
 *
 * - a request leaves only with a token from the tenant's budget, so none goes out faster than the declared rate or
 *   during a pause, not even the second call of a sync already running;
 * - when the CRM reports its quota (the mapping's rateLimit readers), at most what it said remains goes out before
 *   the reset, less the requests in flight when the answer was read (they may still count against it). Once
 *   nothing remains, the tenant is paused until the reset, on every runner sharing its budget.
 */
export class TenantPacer implements RequestPacer {
  private inFlight = 0;
  private quota?: Quota;

  /** `onPause` is told of each quota pause (for the onRateLimited hook) and of the shared budget's answer. */
  constructor(private readonly rate: TenantRateLimit, private readonly clock: Clock, private readonly onPause: (pauseMs: number, paused: Promise<void>) => void) {}

  async beforeRequest(): Promise<void> {
    for (;;) {
      const now = this.clock.now();
      const quota = this.activeQuota(now);
      if (quota && quota.left <= 0) {
        await this.sleep(quota.resetAt - now);
        continue;
      }
      // Reserved before the budget is asked (asynchronous), so requests waiting together never overdraw the quota.
      if (quota) quota.left--;
      const retryAt = await this.rate.take(now);
      if (retryAt === undefined) break;
      if (quota) quota.left++;
      await this.sleep(retryAt - now);
    }
    this.inFlight++;
  }

  afterResponse(rateLimit: RateLimitInfo | undefined): void {
    this.inFlight--;
    const { remaining, resetMs } = rateLimit ?? {};
    if (remaining === undefined || resetMs === undefined || resetMs <= 0) return;
    const now = this.clock.now();
    const read: Quota = { left: remaining - this.inFlight, resetAt: now + resetMs };
    // Within a window what remains only goes down: an answer that overtook an older one must not raise it again.
    const current = this.activeQuota(now);
    if (current && current.left <= read.left) return;
    this.quota = read;
    if (read.left <= 0) this.onPause(resetMs, this.rate.pause(read.resetAt));
  }

  private activeQuota(now: number): Quota | undefined {
    return this.quota && now < this.quota.resetAt ? this.quota : undefined;
  }

  private sleep(ms: number): Promise<void> {
    return new Promise((resolve) => this.clock.setTimer(resolve, Math.max(1, ms)));
  }
}
