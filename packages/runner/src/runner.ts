import { parseContactEvent, requestTimeoutMs, type FieldError } from '@crm-sync/core';
import type { ContactStatus, DeadLetter, IngestResult, RejectedEvent, RetryPolicy, RunnerHooks, RunnerLogger, StatusCounts, TenantSettings } from './api';
import { systemClock, type Clock, type TimerHandle } from './clock';
import type { DebounceWindow } from './debounce/window';
import type { SyncEngineLike } from './dispatch/attempt';
import { leaseOwnerId } from './dispatch/lease-owner';
import type { RateLimitFactory } from './dispatch/rate-limit';
import { TenantDispatcher, type DispatcherOptions } from './dispatch/tenant-dispatcher';
import { reconcileTenant, type ReconcileOptions, type ReconcileReport } from './reconcile';
import { DEFAULT_RETRY_POLICY } from './retry';
import type { AcceptItem, Store } from './store/types';

export interface RunnerOptions {
  tenants: TenantSettings[];
  store: Store;
  engine: SyncEngineLike;
  /** Default: real time. */
  clock?: Clock;
  /** Lifecycle lines, and the runner's own errors when `hooks.onError` is not given. Sync outcomes are reported through hooks. */
  logger?: RunnerLogger;
  retry?: Partial<RetryPolicy>;
  hooks?: RunnerHooks;
  /**
   * How long a claimed contact is held without renewal. The lease is renewed every third of it while the sync runs,
   * so it bounds how long a runner that dies (on another host) delays its contacts, not how long a sync may take.
   * Default 30 s.
   */
  leaseMs?: number;
  /** Look at the store at least this often, for other processes' writes. Default 1 s. */
  recheckMs?: number;
  /** How long redelivered eventIds are recognised. Default 7 days. */
  eventRetentionMs?: number;
  /** Jitter source, for tests. Default Math.random. */
  random?: () => number;
  /** Per-tenant request budgets. Default: this process's own; the Redis store's are shared by all its runners. */
  rateLimits?: RateLimitFactory;
}

export interface ReconfigureResult {
  added: string[];
  removed: string[];
  /** Tenants whose settings changed (restarted with them). */
  changed: string[];
  /** Of those, the ones whose mapping text changed: their synced contacts are sent with it only at their next change. */
  mappingChanged: string[];
}

export interface IngestOptions {
  /** The tenant the request addressed (`/v1/tenants/{tenant}/events`): events default to it and may not name another. */
  tenant?: string;
  /** Sync without waiting for the quiet window (backfill). */
  immediate?: boolean;
  /** Also answer `contacts`: the contact each accepted event is for, as validation read it (backfill waits for them). */
  contacts?: boolean;
}

const PRUNE_EVERY_MS = 3_600_000;
const DEFAULT_LEASE_MS = 30_000;
const IDLE_POLL_MS = 50;
/** Resyncs a second when neither the tenant nor its mapping names a request rate. */
const DEFAULT_RESYNC_PER_SECOND = 10;
/** Reconcile's CRM reads a second when neither the tenant nor its mapping names a request rate. */
const DEFAULT_RECONCILE_PER_SECOND = 5;
const noop = () => undefined;

/** Whether a tenant's new settings are the same as its old ones: the same mapping text and every setting. */
function sameSettings(a: TenantSettings, b: TenantSettings): boolean {
  return a.mapping.hash === b.mapping.hash && a.baseUrl === b.baseUrl && a.quietMs === b.quietMs && a.maxWaitMs === b.maxWaitMs
    && a.concurrency === b.concurrency && a.requestsPerSecond === b.requestsPerSecond && a.defaultCountry === b.defaultCountry;
}
/** Half the tenant's request rate (its own, else its mapping's), else `otherwise`: background work leaves room for syncs. */
function halfRate(settings: TenantSettings, otherwise: number): number {
  const rate = settings.requestsPerSecond ?? settings.mapping.rateLimit.requestsPerSecond;
  return rate !== undefined ? rate / 2 : otherwise;
}
const silentLogger: RunnerLogger = { debug: noop, info: noop, warn: noop, error: noop };
/** The window of an `immediate` (backfill) ingest: due at once. */
const IMMEDIATE: DebounceWindow = Object.freeze({ quietMs: 0, maxWaitMs: 0 });

/**
 * The runner: accepts contact events durably, and syncs each contact once it goes quiet (or its max wait passes),
 * one attempt in flight per contact, with per-tenant concurrency and rate limits, retries and dead letters.
 * Several runners may share one store; each claims contacts under a lease.
 */
export class Runner {
  private readonly store: Store;
  private readonly engine: SyncEngineLike;
  private readonly clock: Clock;
  private readonly logger: RunnerLogger;
  private readonly hooks: RunnerHooks;
  private readonly tenants = new Map<string, TenantSettings>();
  private tenantNames: readonly string[] = [];
  /** Each tenant's debounce window, one object shared by all its accepted events. */
  private readonly windows = new Map<string, DebounceWindow>();
  private readonly dispatchers = new Map<string, TenantDispatcher>();
  private readonly dispatcherOptions: DispatcherOptions;
  private readonly idleWaiters = new Set<() => void>();
  private readonly eventRetentionMs: number;
  private pruneTimer?: TimerHandle;
  private started = false;

  constructor(options: RunnerOptions) {
    if (options.tenants.length === 0) throw new Error('Runner needs at least one tenant');
    this.store = options.store;
    this.engine = options.engine;
    this.clock = options.clock ?? systemClock;
    this.logger = options.logger ?? silentLogger;
    this.eventRetentionMs = options.eventRetentionMs ?? 7 * 24 * 3_600_000;
    this.hooks = this.withErrorLogging(options.hooks ?? {});
    this.dispatcherOptions = {
      store: this.store, engine: options.engine, clock: this.clock, retry: { ...DEFAULT_RETRY_POLICY, ...options.retry }, random: options.random, hooks: this.hooks,
      leaseMs: options.leaseMs ?? DEFAULT_LEASE_MS, recheckMs: options.recheckMs ?? 1000, owner: leaseOwnerId(), rateLimits: options.rateLimits, onSettled: () => this.checkIdle(),
    };
    for (const tenant of options.tenants) this.addTenant(tenant);
  }

  /**
   * Applies a new set of tenants while the others keep running (the daemon's reload): a tenant that is gone stops
   * taking events and claiming (its attempts in flight get `drainMs`, the rest are handed back; its contacts stay in
   * the store and resume if it comes back); a new one starts; one whose settings changed (its mapping's text, base URL,
   * windows, concurrency, request rate, default country) is stopped as a gone one is and started again with them.
   * Unchanged tenants are not touched. Resolves once the stopped ones have drained. `opts.retry`, when given, is the
   * retry policy from now on, for every tenant (an attempt in flight decides with it when it fails).
   */
  async reconfigure(tenants: readonly TenantSettings[], opts: { drainMs?: number; retry?: Partial<RetryPolicy> } = {}): Promise<ReconfigureResult> {
    if (tenants.length === 0) throw new Error('Runner needs at least one tenant');
    if (opts.retry) {
      const retry = { ...DEFAULT_RETRY_POLICY, ...opts.retry };
      this.dispatcherOptions.retry = retry;
      for (const d of this.dispatchers.values()) d.setRetry(retry);
    }
    const next = new Map(tenants.map((t) => [t.name, t]));
    const removed = [...this.tenants.keys()].filter((name) => !next.has(name));
    const added = [...next.keys()].filter((name) => !this.tenants.has(name));
    const changed = [...next.keys()].filter((name) => this.tenants.has(name) && !sameSettings(this.tenants.get(name)!, next.get(name)!));
    const mappingChanged = changed.filter((name) => this.tenants.get(name)!.mapping.hash !== next.get(name)!.mapping.hash);
    const stopping = [...removed, ...changed].map((name) => {
      const old = this.dispatchers.get(name)!;
      this.tenants.delete(name);
      this.windows.delete(name);
      this.dispatchers.delete(name);
      return old.stop(opts.drainMs ?? 10_000);
    });
    this.tenantNames = [...this.tenants.keys()];
    for (const name of added) this.addTenant(next.get(name)!);
    // A changed tenant takes events with its new settings at once; it claims again once its old dispatcher has drained.
    for (const name of changed) this.addTenant(next.get(name)!, { start: false });
    await Promise.all(stopping);
    if (this.started) for (const name of changed) this.dispatchers.get(name)?.start();
    if (added.length + removed.length + changed.length > 0) this.logger.info({ added, removed, changed }, 'tenants reconfigured');
    return { added, removed, changed, mappingChanged };
  }

  /** The tenants' names, as configured now. */
  tenantList(): readonly string[] {
    return this.tenantNames;
  }

  /** The longest request timeout among the tenants' mappings: how long an attempt's last request may still take. */
  longestRequestTimeoutMs(): number {
    return Math.max(0, ...[...this.tenants.values()].map((t) => requestTimeoutMs(t.mapping)));
  }

  private addTenant(tenant: TenantSettings, opts: { start?: boolean } = {}): void {
    this.tenants.set(tenant.name, tenant);
    this.tenantNames = [...this.tenants.keys()];
    this.windows.set(tenant.name, Object.freeze({ quietMs: tenant.quietMs, maxWaitMs: tenant.maxWaitMs }));
    const dispatcher = new TenantDispatcher(tenant, this.dispatcherOptions);
    this.dispatchers.set(tenant.name, dispatcher);
    if (this.started && opts.start !== false) dispatcher.start();
  }

  /**
   * Validates events and makes the good ones durable; resolves once they are committed. Bad events change nothing
   * and are reported by index and eventId with every field's reason.
   */
  async ingest(events: readonly unknown[], opts: IngestOptions = {}): Promise<IngestResult> {
    const rejected: RejectedEvent[] = [];
    const items: AcceptItem[] = [];
    const now = this.clock.now();
    for (let index = 0; index < events.length; index++) {
      const event = events[index];
      const errors = this.validate(event, opts, items, now);
      if (errors) {
        const eventId = (event as { eventId?: unknown } | null)?.eventId;
        rejected.push({ index, ...(typeof eventId === 'string' ? { eventId } : {}), errors });
      }
    }
    const outcomes = await this.store.accept(items, now);
    const perTenant = new Map<string, { accepted: number; ignored: number }>();
    let ignored = 0;
    for (let i = 0; i < outcomes.length; i++) {
      const t = items[i].contact.tenant;
      let c = perTenant.get(t);
      if (c === undefined) perTenant.set(t, c = { accepted: 0, ignored: 0 });
      c.accepted++;
      if (outcomes[i] !== 'accepted') { c.ignored++; ignored++; }
    }
    for (const [tenant, c] of perTenant) {
      this.callHook(() => this.hooks.onAccepted?.({ tenant, ...c }));
      if (c.accepted > c.ignored) this.dispatchers.get(tenant)?.wake();
    }
    if (rejected.length > 0) this.callHook(() => this.hooks.onRejected?.({ count: rejected.length }));
    const result: IngestResult = { accepted: outcomes.length, ignored, rejected };
    if (opts.contacts) result.contacts = items.map(({ contact }) => ({ tenant: contact.tenant, contactId: contact.contactId }));
    return result;
  }

  /**
   * Starts dispatching: contacts already pending in the store (from before a restart) are synced when due, and those
   * that runners of this host which died (kill -9, a crash) still hold are taken over at once rather than when
   * their leases lapse. Resolves once that take-over is done (dispatching has begun already).
   */
  start(): Promise<void> {
    if (this.started) return Promise.resolve();
    this.started = true;
    for (const d of this.dispatchers.values()) d.start();
    this.schedulePrune();
    this.logger.info({ tenants: this.tenantNames }, 'runner started');
    return this.releaseDeadOwners();
  }

  /**
   * Stops claiming; attempts in flight get drainMs to finish, the rest are handed back (due again at once, or once a
   * create they sent has timed out). With settleMs, then waits that long for the handed-back attempts to end, so a
   * late answer's lead id is stored before the caller closes the store (the daemon gives the longest request timeout).
   */
  async stop(opts: { drainMs?: number; settleMs?: number } = {}): Promise<void> {
    this.started = false;
    this.pruneTimer?.cancel();
    const inFlight = [...this.dispatchers.values()].reduce((n, d) => n + d.inFlight, 0);
    this.logger.info({ inFlight, drainMs: opts.drainMs ?? 10_000 }, 'runner stopping');
    await Promise.all([...this.dispatchers.values()].map((d) => d.stop(opts.drainMs ?? 10_000, opts.settleMs)));
  }

  status(): Promise<StatusCounts> {
    return this.store.counts(this.clock.now());
  }

  contact(tenant: string, contactId: string): Promise<ContactStatus | undefined> {
    return this.store.contactStatus(tenant, contactId, this.clock.now());
  }

  deadLetters(tenant?: string): Promise<DeadLetter[]> {
    return this.store.deadLetters(tenant);
  }

  /** Makes dead-lettered contacts pending again (due now, fresh retry budget). Returns how many. */
  async replay(tenant: string, contactId: string | 'all'): Promise<number> {
    const n = await this.store.replay(tenant, contactId, this.clock.now());
    if (n > 0) this.dispatchers.get(tenant)?.wake();
    return n;
  }

  /**
   * Sends contacts again even if their payload has not changed (Store.resync): after a mapping change, or when the
   * CRM lost what it was sent. Contacts that were synced are spread out at `perSecond` (default: half the tenant's
   * request rate if it has one, else 10 a second), so the tenant's new changes are not queued behind all of them.
   * Returns how many were marked.
   */
  async resync(tenant: string, contactIds: readonly string[] | 'all', opts: { perSecond?: number } = {}): Promise<number> {
    const settings = this.settingsOf(tenant); // an unknown tenant is an error, whatever the rate
    const perSecond = opts.perSecond ?? halfRate(settings, DEFAULT_RESYNC_PER_SECOND);
    const n = await this.store.resync(tenant, contactIds, { now: this.clock.now(), intervalMs: 1000 / perSecond });
    if (n > 0) this.dispatchers.get(tenant)?.wake();
    return n;
  }

  /**
   * Compares the lead store with the CRM (./reconcile.ts): reads the tenant's synced leads back with the mapping's
   * fetch, at `perSecond` (default: half the tenant's request rate if it has one, else 5 a second) and within the
   * tenant's request budget, which its syncs share (so together they keep to the tenant's rate), and with `repair`
   * sends again the contacts whose lead differs or is missing (at the resync default rate).
   */
  async reconcile(tenant: string, opts: Omit<ReconcileOptions, 'perSecond'> & { perSecond?: number } = {}): Promise<ReconcileReport> {
    const settings = this.settingsOf(tenant);
    const perSecond = opts.perSecond ?? halfRate(settings, DEFAULT_RECONCILE_PER_SECOND);
    return reconcileTenant({
      store: this.store, engine: this.engine, clock: this.clock, tenant: settings, pacer: this.dispatchers.get(tenant)?.pacer, resync: (ids) => this.resync(tenant, ids),
    }, { ...opts, perSecond });
  }

  private settingsOf(tenant: string): TenantSettings {
    const settings = this.tenants.get(tenant);
    if (!settings) throw new Error(`unknown tenant ${JSON.stringify(tenant)}`);
    return settings;
  }

  /** Resolves once nothing is pending, in flight or waiting for a retry (dead letters are idle). */
  whenIdle(): Promise<void> {
    return new Promise((resolve) => {
      const poll = setInterval(() => this.checkIdle(), IDLE_POLL_MS);
      poll.unref?.();
      this.idleWaiters.add(() => { clearInterval(poll); resolve(); });
      this.checkIdle();
    });
  }

  private checkIdle(): void {
    if (this.idleWaiters.size === 0) return;
    this.store.counts(this.clock.now()).then((c) => {
      const busy = [...this.dispatchers.values()].some((d) => d.inFlight > 0);
      if (busy || c.pending + c.inFlight + c.retrying > 0) return;
      const waiters = [...this.idleWaiters];
      this.idleWaiters.clear();
      for (const w of waiters) w();
    }, (error) => this.hooks.onError?.({ error, during: 'status' }));
  }

  /** Returns the field errors of a bad event, or queues the good one. */
  private validate(event: unknown, opts: IngestOptions, items: AcceptItem[], now: number): FieldError[] | undefined {
    const pathTenant = opts.tenant;
    if (pathTenant !== undefined && !this.tenants.has(pathTenant)) return [{ field: 'tenant', message: `unknown tenant ${JSON.stringify(pathTenant)}` }];
    const named = (event as { tenant?: unknown } | null)?.tenant;
    const settings = this.tenants.get(typeof named === 'string' ? named : pathTenant ?? (this.tenantNames.length === 1 ? this.tenantNames[0] : ''));
    const parsed = parseContactEvent(event, { tenants: this.tenantNames, defaultTenant: pathTenant, defaultCountry: settings?.defaultCountry, now });
    if (!parsed.ok) return parsed.errors;
    const { contact } = parsed;
    if (pathTenant !== undefined && contact.tenant !== pathTenant) {
      return [{ field: 'tenant', message: `must be ${JSON.stringify(pathTenant)} (the tenant in the URL), got ${JSON.stringify(contact.tenant)}` }];
    }
    items.push({ contact, window: opts.immediate ? IMMEDIATE : this.windows.get(contact.tenant)! });
    return undefined;
  }

  private async releaseDeadOwners(): Promise<void> {
    await Promise.all([...this.dispatchers.values()].map(async (d) => {
      const tenant = d.tenant.name;
      try {
        const { owners, contacts } = await d.releaseDeadOwners();
        if (contacts > 0) this.logger.info({ tenant, owners, contacts }, 'took over the contacts of dead runners on this host');
      } catch (error) {
        this.hooks.onError?.({ error, tenant, during: 'release-dead-owners' });
      }
    }));
  }

  private schedulePrune(): void {
    this.pruneTimer = this.clock.setTimer(() => {
      this.store.pruneEvents(this.clock.now() - this.eventRetentionMs)
        .catch((error) => this.hooks.onError?.({ error, during: 'prune-events' }))
        .finally(() => { if (this.started) this.schedulePrune(); });
    }, PRUNE_EVERY_MS);
  }

  private callHook(hook: () => void): void {
    try {
      hook();
    } catch (error) {
      this.hooks.onError?.({ error, during: 'hook' });
    }
  }

  /** Outcomes go to the caller's hooks (which log them as they see fit); the runner's own errors are logged when no hook takes them. */
  private withErrorLogging(hooks: RunnerHooks): RunnerHooks {
    if (hooks.onError) return hooks;
    return { ...hooks, onError: (e) => this.logger.error({ tenant: e.tenant, contactId: e.contactId, during: e.during, err: e.error }, 'runner error') };
  }
}
