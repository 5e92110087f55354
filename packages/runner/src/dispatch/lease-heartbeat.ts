import { SyncError } from '@crm-sync/core';
import type { Clock, TimerHandle } from '../clock';
import type { Claim, Store } from '../store/types';

/** A claim's lease was gone when its heartbeat tried to renew it: the contact may be synced twice at once. */
export class LeaseLostError extends SyncError {
  constructor(claim: Claim) {
    super('ERR_LEASE_LOST', 'the lease on this contact was lost while its sync ran: it was not renewed for a whole lease '
      + '(the store unreachable, or this process stalled) and another claim or a change took the contact; '
      + 'this attempt\'s result is kept only as far as it prevents a duplicate lead', { retryable: false, context: { tenant: claim.tenant, contactId: claim.contactId } });
  }
}

export interface LeaseHeartbeatOptions {
  store: Store;
  clock: Clock;
  leaseMs: number;
  /** A lost lease (LeaseLostError) or a renewal that failed. */
  onError: (error: unknown) => void;
}

/**
 * Keeps one claim's lease alive while its attempt runs, renewing it every third of a lease: a sync may take longer
 * than the lease (a mapping's timeout × its calls), and must not be claimed a second time meanwhile, while the lease
 * of a runner that dies still lapses within one lease. A renewal that fails is tried again at the next beat (two
 * thirds of the lease are left). One that finds the lease lost is reported and ends the heartbeat.
 */
export class LeaseHeartbeat {
  private timer?: TimerHandle;
  private stopped = false;

  constructor(private readonly claim: Claim, private readonly opts: LeaseHeartbeatOptions) {
    this.schedule();
  }

  /** Before the attempt's outcome is written (it ends the lease: a renewal racing it would find the lease gone), or at shutdown. */
  stop(): void {
    this.stopped = true;
    this.timer?.cancel();
  }

  private schedule(): void {
    this.timer = this.opts.clock.setTimer(() => void this.beat(), Math.max(1, Math.floor(this.opts.leaseMs / 3)));
  }

  private async beat(): Promise<void> {
    const { store, clock, leaseMs, onError } = this.opts;
    try {
      const held = await store.renewLease(this.claim, clock.now(), leaseMs);
      if (this.stopped) return;
      if (!held) {
        this.stopped = true;
        onError(new LeaseLostError(this.claim));
        return;
      }
    } catch (error) {
      if (this.stopped) return;
      onError(error);
    }
    this.schedule();
  }
}
