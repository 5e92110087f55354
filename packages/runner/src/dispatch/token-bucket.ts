/**
 * A per-tenant requests-per-second limiter. Each sync takes one token before it starts and is charged for its extra
 * calls when it ends (the bucket may go into debt), so the average request rate holds without wrapping the HTTP
 * client. `pause` stops the whole tenant, e.g. for a 429's Retry-After.
 */
export class TokenBucket {
  private tokens: number;
  private updatedAt: number;
  private pausedUntil = 0;
  private readonly capacity: number;

  /** `perSecond` undefined: unlimited (only pauses apply). */
  constructor(private readonly perSecond: number | undefined, now: number) {
    this.capacity = perSecond === undefined ? Infinity : Math.max(1, perSecond);
    this.tokens = this.capacity;
    this.updatedAt = now;
  }

  /** Whole tokens available now (0 while paused). */
  available(now: number): number {
    if (now < this.pausedUntil) return 0;
    this.refill(now);
    return Math.max(0, Math.floor(this.tokens));
  }

  take(n: number, now: number): void {
    if (this.perSecond === undefined) return;
    this.refill(now);
    this.tokens -= n;
  }

  /** When at least one token will be available. */
  readyAt(now: number): number {
    let at = Math.max(now, this.pausedUntil);
    if (this.perSecond !== undefined) {
      this.refill(now);
      if (this.tokens < 1) at = Math.max(at, now + Math.ceil(((1 - this.tokens) / this.perSecond) * 1000));
    }
    return at;
  }

  pause(until: number): void {
    this.pausedUntil = Math.max(this.pausedUntil, until);
  }

  private refill(now: number): void {
    if (this.perSecond === undefined || now <= this.updatedAt) return;
    this.tokens = Math.min(this.capacity, this.tokens + ((now - this.updatedAt) / 1000) * this.perSecond);
    this.updatedAt = now;
  }
}
