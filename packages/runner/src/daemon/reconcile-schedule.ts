import type { TenantConfig } from '../config/types';
import type { Clock, TimerHandle } from '../clock';
import type { Logger } from '../log';
import type { Metrics } from '../metrics';
import type { LeadCheck } from '../reconcile';
import type { Runner } from '../runner';

/** The states worth a log line: something the lead store and the CRM disagree on, or a read that failed. */
const WORTH_A_LINE: ReadonlySet<LeadCheck['state']> = new Set(['differs', 'missing', 'other-lead', 'failed']);

/**
 * Scheduled reconcile passes (a tenant's `reconcile` setting): a pass over every synced contact of the tenant, the next
 * one `every` after it ends, the first `every` after start. Each lead checked counts in
 * crm_sync_reconcile_leads_total; a disagreement is logged with the contact, the lead and the field paths (never their
 * values: they are contact data). `close` stops starting reads and waits for those in flight.
 */
export class ReconcileSchedule {
  private readonly timers = new Map<string, TimerHandle>();
  private readonly passes = new Set<Promise<void>>();
  private readonly stopping = new AbortController();

  constructor(
    private readonly runner: Runner,
    private readonly tenants: readonly TenantConfig[],
    private readonly deps: { clock: Clock; logger: Logger; metrics: Metrics },
  ) {}

  start(): void {
    for (const t of this.tenants) if (t.reconcile) this.schedule(t.name, t.reconcile);
  }

  async close(): Promise<void> {
    this.stopping.abort();
    for (const timer of this.timers.values()) timer.cancel();
    this.timers.clear();
    await Promise.all(this.passes);
  }

  private schedule(tenant: string, settings: NonNullable<TenantConfig['reconcile']>): void {
    if (this.stopping.signal.aborted) return;
    this.timers.set(tenant, this.deps.clock.setTimer(() => {
      this.timers.delete(tenant);
      const pass = this.pass(tenant, settings).finally(() => {
        this.passes.delete(pass);
        this.schedule(tenant, settings);
      });
      this.passes.add(pass);
    }, settings.everyMs));
  }

  private async pass(tenant: string, settings: NonNullable<TenantConfig['reconcile']>): Promise<void> {
    const { logger, metrics, clock } = this.deps;
    const log = logger.child({ tenant });
    log.info({ repair: settings.repair }, 'reconcile: pass started');
    try {
      const report = await this.runner.reconcile(tenant, {
        perSecond: settings.perSecond, repair: settings.repair, signal: this.stopping.signal,
        onCheck: (c) => {
          metrics.leadReconciled(tenant, c.state);
          if (!WORTH_A_LINE.has(c.state)) return;
          log.warn({
            contactId: c.contactId, leadId: c.leadId, state: c.state, crmLeadId: c.crmLeadId,
            fields: c.differences?.map((d) => d.path), error: c.error,
          }, `reconcile: lead ${c.state}`);
        },
      });
      if (report.complete) metrics.reconcilePassEnded(tenant, clock.now());
      log.info({ checked: report.checked, counts: report.counts, repaired: report.repaired, complete: report.complete }, 'reconcile: pass finished');
    } catch (err) {
      const e = err as { code?: string; message?: string };
      log.error({ err: { code: e?.code, message: e?.message ?? String(err) } }, 'reconcile: pass failed');
    }
  }
}
