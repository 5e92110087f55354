import { requestTimeoutMs, type RequestPacer } from '@crm-sync/core';
import type { RunnerHooks, TenantSettings } from '../api';
import type { TimerHandle } from '../clock';
import type { Claim } from '../store/types';
import { IdentityWaits, runAttempt, type AttemptDeps, type AttemptResult } from './attempt';
import { LeaseHeartbeat } from './lease-heartbeat';
import { isDeadLocalOwner } from './lease-owner';
import { localRateLimits, type RateLimitFactory, type TenantRateLimit } from './rate-limit';
import { TenantPacer } from './request-pacer';

export interface DispatcherOptions extends AttemptDeps {
  hooks: RunnerHooks;
  /** Lease per claim, renewed while its attempt runs: a runner that dies holds a contact this long at most. */
  leaseMs: number;
  /** Look at the store at least this often, for changes other processes made. */
  recheckMs: number;
  /** This runner's id, on its leases. */
  owner: string;
  /** The tenant's request budget. Default: this process's own; several runners on Redis share one. */
  rateLimits?: RateLimitFactory;
  /** Called after every attempt (for whenIdle). */
  onSettled: () => void;
}

/** Claims at most this many contacts per store round trip. */
const CLAIM_BATCH = 64;

/** How long a stopping dispatcher waits for the store to take back its unfinished claims. */
const RELEASE_WAIT_MS = 5000;

/**
 * The dispatcher of one tenant: it sleeps until the tenant's earliest due contact (or the recheck interval), claims
 * what is due within its concurrency and rate limit, and runs one attempt per claim. The debounce itself lives in
 * the store's dueAt, so a restart resumes every pending contact on time.
 */
export class TenantDispatcher {
  private readonly rate: TenantRateLimit;
  /** What an attempt needs, with every CRM request paced by the tenant's budget. */
  private readonly attemptDeps: AttemptDeps;
  private readonly active = new Map<string, { claim: Claim; heartbeat: LeaseHeartbeat; done: Promise<void> }>();
  /** Set once a stop has handed back what was unfinished and stopped waiting for it. */
  private abandoned = false;
  private running = false;
  /** The cycle in progress, if any: at most one at a time. */
  private cycling?: Promise<void>;
  private again = false;
  private timer?: TimerHandle;
  /** A wake queued for the end of this event-loop turn (see wakeAfterTurn). */
  private wakeQueued = false;
  /** Until when this runner has paused the tenant for the CRM's rate limit (as far as it has told the hook). */
  private pausedUntil = 0;

  constructor(readonly tenant: TenantSettings, private readonly opts: DispatcherOptions) {
    const rps = tenant.requestsPerSecond ?? tenant.mapping.rateLimit.requestsPerSecond;
    this.rate = (opts.rateLimits ?? localRateLimits)(tenant.name, rps, opts.clock.now());
    const pacer = new TenantPacer(this.rate, opts.clock, (pauseMs, paused) => {
      paused.catch((error) => this.report(error, 'rate-limit'));
      this.notePause(pauseMs);
    });
    this.attemptDeps = { ...opts, pacer, identityWaits: new IdentityWaits() };
  }

  /** The retry policy from now on (a reload): an attempt in flight decides with it when it fails. */
  setRetry(retry: AttemptDeps['retry']): void {
    this.attemptDeps.retry = retry;
  }

  /** Paces every CRM request made for this tenant (its syncs', and reconcile's reads) within its budget. */
  get pacer(): RequestPacer {
    return this.attemptDeps.pacer!;
  }

  get inFlight(): number {
    return this.active.size;
  }

  start(): void {
    this.running = true;
    this.abandoned = false;
    this.wake();
  }

  /** Something changed (an ingest, a replay, a finished attempt): look again now. */
  wake(): void {
    if (!this.running) return;
    if (this.cycling) {
      this.again = true;
      return;
    }
    this.timer?.cancel();
    this.timer = undefined;
    this.cycling = this.cycle()
      .catch((error) => { this.report(error, 'dispatch'); return undefined; })
      .then((nextAt) => {
        this.cycling = undefined;
        if (this.again) {
          this.again = false;
          this.wake();
        } else if (this.running) {
          const at = nextAt ?? this.opts.clock.now() + this.opts.recheckMs;
          this.timer = this.opts.clock.setTimer(() => this.wake(), at - this.opts.clock.now());
        }
      });
  }

  /**
   * Wakes once the attempts settling in this event-loop turn have all settled: outcomes are group-committed, so
   * several attempts end together, and one claim for all their free slots costs one transaction instead of several.
   */
  private wakeAfterTurn(): void {
    if (this.wakeQueued) return;
    this.wakeQueued = true;
    setImmediate(() => {
      this.wakeQueued = false;
      this.wake();
    });
  }

  /** How long a create of this tenant may take: a contact whose create's outcome is unknown is not synced sooner. */
  private get createTimeoutMs(): number {
    return requestTimeoutMs(this.tenant.mapping);
  }

  /**
   * Ends the leases that runners of this host which no longer run (kill -9, a crash) left on the tenant's contacts,
   * so those contacts are synced now rather than when the leases lapse. Returns whose leases, and how many.
   */
  async releaseDeadOwners(): Promise<{ owners: string[]; contacts: number }> {
    const { store, clock } = this.opts;
    const owners = (await store.leaseOwners(this.tenant.name)).filter(isDeadLocalOwner);
    if (owners.length === 0) return { owners, contacts: 0 };
    const contacts = await store.releaseOwners(this.tenant.name, owners, { now: clock.now(), createTimeoutMs: this.createTimeoutMs });
    if (contacts > 0) this.wake();
    return { owners, contacts };
  }

  /**
   * Stops claiming; waits up to drainMs for attempts in flight, then hands the rest back to the store (each due once
   * a create it sent has timed out). Then waits up to settleMs for those attempts to end, so an answer that still
   * comes (a lead id) is stored before the store is closed. A store that does not take the hand-back within
   * RELEASE_WAIT_MS (Redis gone) is not waited for: the leases then lapse, and are taken over as a dead runner's.
   */
  async stop(drainMs: number, settleMs = 0): Promise<void> {
    this.running = false;
    this.timer?.cancel();
    this.timer = undefined;
    // Claims it is taking now are launched, so they are drained or handed back below. A store that does not answer
    // (Redis gone) is not waited for: what it still claims is left to lapse.
    if (this.cycling) await this.within(RELEASE_WAIT_MS, this.cycling);
    if (this.active.size === 0) return;
    const { clock } = this.opts;
    await this.within(drainMs, Promise.all([...this.active.values()].map((a) => a.done)));
    const unfinished = [...this.active.values()];
    if (unfinished.length === 0) return;
    const released = await this.within(RELEASE_WAIT_MS, Promise.all(unfinished.map(({ claim, heartbeat }) => {
      heartbeat.stop();
      return this.opts.store.release(claim, clock.now(), { createTimeoutMs: this.createTimeoutMs }).catch((error) => this.report(error, 'release', claim));
    })));
    if (!released) {
      // Their answers could not be stored either: not waited for.
      this.report(new Error(`the store did not take back ${unfinished.length} unfinished attempt(s) within ${RELEASE_WAIT_MS} ms; their leases lapse instead`), 'release');
      this.abandoned = true;
      return;
    }
    if (settleMs > 0) await this.within(settleMs, Promise.all(unfinished.map((a) => a.done)));
    this.abandoned = true;
  }

  /** Whether `work` ended within `ms` of the runner's clock (it is not waited for after). */
  private async within(ms: number, work: Promise<unknown>): Promise<boolean> {
    let timer: TimerHandle | undefined;
    const timeout = new Promise<false>((resolve) => { timer = this.opts.clock.setTimer(() => resolve(false), ms); });
    try {
      return await Promise.race([work.then(() => true), timeout]);
    } finally {
      timer?.cancel();
    }
  }

  /** Claims and launches what is due; returns when to look next. */
  private async cycle(): Promise<number> {
    const { store, clock, leaseMs, owner, recheckMs } = this.opts;
    const name = this.tenant.name;
    while (this.running) {
      const now = clock.now();
      const limit = Math.min(this.tenant.concurrency - this.active.size, CLAIM_BATCH);
      if (limit <= 0) break;
      // Requests take the tokens (one each, as they leave); a contact is claimed only while the budget has one, so
      // a paused or spent tenant does not hold leases it cannot use.
      if (await this.rate.readyAt(now) > now) break;
      const claims = await store.claimDue(name, { now, limit, leaseMs, owner, createTimeoutMs: this.createTimeoutMs });
      for (const claim of claims) this.launch(claim);
      if (claims.length < limit) break;
    }
    const now = clock.now();
    // At full concurrency a finishing attempt wakes us; otherwise the next due contact or a free token does.
    if (this.active.size >= this.tenant.concurrency) return now + recheckMs;
    const due = await store.nextDueAt(name);
    const at = Math.min(due ?? Infinity, now + recheckMs);
    return Math.max(at, await this.rate.readyAt(now));
  }

  private launch(claim: Claim): void {
    const { store, clock, leaseMs } = this.opts;
    const heartbeat = new LeaseHeartbeat(claim, { store, clock, leaseMs, onError: (error) => this.report(error, 'renew-lease', claim) });
    const done = runAttempt(claim, this.tenant, this.attemptDeps, heartbeat)
      .then((result) => this.settled(claim, result))
      // An attempt still running after its stop was abandoned (handed back, the store about to close): what it fails
      // at then is expected, not reported.
      .catch((error) => { if (!this.abandoned) this.report(error, 'attempt', claim); })
      .finally(() => {
        heartbeat.stop();
        this.active.delete(claim.leaseToken);
        this.opts.onSettled();
        this.wakeAfterTurn();
      });
    this.active.set(claim.leaseToken, { claim, heartbeat, done });
  }

  private settled(claim: Claim, result: AttemptResult): void {
    const { clock, hooks } = this.opts;
    const tenant = this.tenant.name;
    const { contactId } = claim;
    if ('deferred' in result) {
      this.call(() => hooks.onDeferred?.({ tenant, contactId, delayMs: result.deferred.delayMs }));
      return;
    }
    const calls = result.record.calls;
    if (result.tenantPauseMs !== undefined) {
      this.rate.pause(clock.now() + result.tenantPauseMs).catch((error) => this.report(error, 'rate-limit', claim));
      this.notePause(result.tenantPauseMs);
    }
    const { outcome, leadId, error, warnings, reason } = result.record;
    this.call(() => hooks.onSync?.({ tenant, contactId, outcome, calls, durationMs: result.durationMs, leadId, error, ...(warnings ? { warnings } : {}), ...(reason ? { reason } : {}) }));
    if (error && result.retry) this.call(() => hooks.onRetry?.({ tenant, contactId, delayMs: result.retry!.delayMs, error }));
    if (error && result.deadLetter) this.call(() => hooks.onDeadLetter?.({ tenant, contactId, cause: result.deadLetter!, error }));
  }

  private call(hook: () => void): void {
    try {
      hook();
    } catch (error) {
      this.report(error, 'hook');
    }
  }

  /**
   * Tells onRateLimited of a pause for the CRM's rate limit by how much it extends the one in force: the attempts in
   * flight that all met the same 429 are one pause, not one each (the log line and the paused-seconds metric).
   */
  private notePause(pauseMs: number): void {
    const now = this.opts.clock.now();
    const until = now + pauseMs;
    const extension = until - Math.max(now, this.pausedUntil);
    if (extension <= 0) return;
    this.pausedUntil = until;
    this.call(() => this.opts.hooks.onRateLimited?.({ tenant: this.tenant.name, pauseMs: extension }));
  }

  private report(error: unknown, during: string, claim?: Claim): void {
    try {
      this.opts.hooks.onError?.({ error, tenant: this.tenant.name, contactId: claim?.contactId, during });
    } catch {
      // A failing error hook has nowhere left to report to.
    }
  }
}
