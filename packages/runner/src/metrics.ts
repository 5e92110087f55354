import { Counter, Gauge, Histogram, Registry, collectDefaultMetrics } from 'prom-client';
import type { AttemptRecord, StatusCounts } from './api';

/**
 * The daemon's Prometheus metrics, on a registry of its own (two daemons in one process, as in tests, do not mix).
 * Labels are tenant names from the config, sync outcomes and engine steps: never contact ids, URLs or secrets.
 */
export class Metrics {
  readonly registry = new Registry();
  /** A counter labelled by tenant only, on this registry. */
  private readonly perTenant = (name: string, help: string) => new Counter({ name, help, labelNames: ['tenant'] as const, registers: [this.registry] });

  private readonly accepted = this.perTenant('crm_sync_events_accepted_total', 'Contact events accepted (durable), by tenant.');
  private readonly ignored = this.perTenant('crm_sync_events_ignored_total', 'Accepted events that changed nothing (redelivered, or older than the newest), by tenant.');
  private readonly rejected = this.perTenant('crm_sync_events_rejected_total', 'Contact events refused by validation, by tenant ("unknown" when the event named none we know).');
  private readonly syncs = new Counter({
    name: 'crm_sync_syncs_total', help: 'Finished sync attempts, by tenant and outcome (created, updated, unchanged, failed...).',
    labelNames: ['tenant', 'outcome'] as const, registers: [this.registry],
  });
  private readonly crmCalls = new Histogram({
    name: 'crm_sync_crm_call_duration_seconds', help: 'CRM call latency, by tenant and step (fetch, create, update, upsert).',
    labelNames: ['tenant', 'step'] as const, buckets: [0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30], registers: [this.registry],
  });
  private readonly retries = this.perTenant('crm_sync_retries_total', 'Sync attempts scheduled again after a retryable failure, by tenant.');
  private readonly deferrals = this.perTenant('crm_sync_sync_deferrals_total', 'Syncs put back before sending anything because another sync held the same phone or email, by tenant.');
  private readonly tenantPauses = this.perTenant('crm_sync_tenant_pauses_total', 'Times a tenant was paused for the CRM\'s rate limit (a 429, or what the mapping\'s rateLimited reader says), by tenant.');
  private readonly tenantPausedSeconds = this.perTenant('crm_sync_tenant_paused_seconds_total', 'Seconds this runner paused the tenant for the CRM\'s rate limit, by tenant (pauses that overlap counted once).');
  private readonly deadLetters = this.perTenant('crm_sync_dead_letters_total', 'Contacts moved to the dead letters, by tenant.');

  private readonly reconciled = new Counter({
    name: 'crm_sync_reconcile_leads_total', help: 'Leads read back by scheduled reconcile passes, by tenant and what was found (match, present, differs, missing, other-lead, changed, failed).',
    labelNames: ['tenant', 'state'] as const, registers: [this.registry],
  });
  private readonly reconcilePass = new Gauge({
    name: 'crm_sync_reconcile_last_pass_timestamp_seconds', help: 'When the tenant\'s last scheduled reconcile pass that went through every synced contact ended (Unix time).',
    labelNames: ['tenant'] as const, registers: [this.registry],
  });

  /** `status` is read at scrape time for the contacts gauge, so it is never stale; `storeUp` likewise. */
  constructor(status: () => StatusCounts | Promise<StatusCounts>, opts: { storeUp?: () => boolean; storeReachable?: () => boolean } = {}) {
    const { storeUp, storeReachable } = opts;
    if (storeUp) {
      new Gauge({
        name: 'crm_sync_store_up', help: '1 while the store takes writes, 0 from a failed write (disk full, read-only, Redis refusing) until writes work again for 5 s.',
        registers: [this.registry],
        collect() { this.set(storeUp() ? 1 : 0); },
      });
    }
    new Gauge({
      name: 'crm_sync_contacts', help: 'Contacts by state: pending (debouncing), in_flight, retrying, dead_letter.',
      labelNames: ['state'] as const, registers: [this.registry],
      async collect() {
        // The counts come from the store: while its connection is lost (Redis) they would wait for it, and the
        // scrape with them. The gauge is left out until it is back; crm_sync_store_up says why.
        if (storeReachable && !storeReachable()) {
          this.reset();
          return;
        }
        const s = await status();
        this.set({ state: 'pending' }, s.pending);
        this.set({ state: 'in_flight' }, s.inFlight);
        this.set({ state: 'retrying' }, s.retrying);
        this.set({ state: 'dead_letter' }, s.deadLetters);
      },
    });
    collectDefaultMetrics({ register: this.registry, prefix: 'crm_sync_' });
  }

  /** Reported by the runner once a batch is durable. */
  eventsAccepted(tenant: string, accepted: number, ignored: number): void {
    if (accepted > 0) this.accepted.inc({ tenant }, accepted);
    if (ignored > 0) this.ignored.inc({ tenant }, ignored);
  }

  /** Reported by the ingest API, which knows which tenant a refused event was meant for. */
  eventsRejected(tenant: string, rejected: number): void {
    if (rejected > 0) this.rejected.inc({ tenant }, rejected);
  }

  /** One finished attempt: its outcome and the latency of every CRM call it made. */
  syncFinished(tenant: string, attempt: Pick<AttemptRecord, 'outcome' | 'calls'>): void {
    this.syncs.inc({ tenant, outcome: attempt.outcome });
    for (const call of attempt.calls) this.crmCalls.observe({ tenant, step: call.step }, call.durationMs / 1000);
  }

  retryScheduled(tenant: string): void {
    this.retries.inc({ tenant });
  }

  syncDeferred(tenant: string): void {
    this.deferrals.inc({ tenant });
  }

  tenantPaused(tenant: string, pauseMs: number): void {
    this.tenantPauses.inc({ tenant });
    this.tenantPausedSeconds.inc({ tenant }, pauseMs / 1000);
  }

  deadLettered(tenant: string): void {
    this.deadLetters.inc({ tenant });
  }

  leadReconciled(tenant: string, state: string): void {
    this.reconciled.inc({ tenant, state });
  }

  reconcilePassEnded(tenant: string, atMs: number): void {
    this.reconcilePass.set({ tenant }, atMs / 1000);
  }

  async render(): Promise<{ contentType: string; body: string }> {
    return { contentType: this.registry.contentType, body: await this.registry.metrics() };
  }
}
