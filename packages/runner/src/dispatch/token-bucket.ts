/**
 * A requests-per-second limiter: `perSecond` tokens a second, at most `burst` of them saved up. `pause` stops
 * everything until a time, e.g. for a 429's Retry-After.
 */
export class TokenBucket {
  private tokens: number;
  private updatedAt: number;
  private pausedUntil = 0;
  private readonly capacity: number;

  /** `perSecond` undefined: unlimited (only pauses apply). `burst` defaults to one second's worth. */
  constructor(private readonly perSecond: number | undefined, now: number, burst = perSecond) {
    this.capacity = perSecond === undefined ? Infinity : Math.max(1, burst ?? perSecond);
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
