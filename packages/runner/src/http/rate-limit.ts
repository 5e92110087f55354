import { TokenBucket } from '../dispatch/token-bucket';

/** Buckets kept at most; past this, buckets that have refilled (idle clients) are dropped first. */
const MAX_CLIENTS = 10_000;

/**
 * The API's per-client limit: a token bucket per remote address, `perSecond` requests a second with bursts of as
 * many. One client (a runaway script, a token-guessing loop) cannot starve the others or the store.
 */
export class ClientRateLimiter {
  private readonly buckets = new Map<string, TokenBucket>();

  constructor(private readonly perSecond: number, private readonly now: () => number = Date.now) {}

  /** 0 when the request may go ahead (and is counted), else the milliseconds until this client may try again. */
  take(client: string): number {
    const now = this.now();
    let bucket = this.buckets.get(client);
    if (!bucket) {
      if (this.buckets.size >= MAX_CLIENTS) this.dropIdle(now);
      bucket = new TokenBucket(this.perSecond, now);
      this.buckets.set(client, bucket);
    }
    if (bucket.available(now) >= 1) {
      bucket.take(1, now);
      return 0;
    }
    return Math.max(1, bucket.readyAt(now) - now);
  }

  private dropIdle(now: number): void {
    const full = Math.max(1, Math.floor(this.perSecond));
    for (const [client, bucket] of this.buckets) if (bucket.available(now) >= full) this.buckets.delete(client);
    // Every client is busy: forget the oldest rather than grow without end.
    if (this.buckets.size >= MAX_CLIENTS) this.buckets.delete(this.buckets.keys().next().value!);
  }
}
