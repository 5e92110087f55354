import type { TenantConfig } from '../config/types';
import type { Clock, TimerHandle } from '../clock';
import { leaseOwnerId } from '../dispatch/lease-owner';
import { errorFields, type Logger } from '../log';
import type { Metrics } from '../metrics';
import type { LeadCheck } from '../reconcile';
import type { Runner } from '../runner';
import type { Store } from '../store/types';

/** The states worth a log line: something the lead store and the CRM disagree on, or a read that failed. */
const WORTH_A_LINE: ReadonlySet<LeadCheck['state']> = new Set(['differs', 'missing', 'other-lead', 'failed']);

/** How long a pass holds its job lease without renewal (renewed every third of it): a runner that dies mid-pass keeps others off this long. */
const PASS_HOLD_MS = 60_000;

type ReconcileSettings = NonNullable<TenantConfig['reconcile']>;

/**
 * Scheduled reconcile passes (a tenant's `reconcile` setting): a pass over every synced contact of the tenant, the next
 * one `every` after it ends, the first `every` after start. Runners sharing a store take turns through a job lease
 * (Store.holdJob, `reconcile:<tenant>`): held while a pass runs, and after a complete pass until the next is due, so
 * the tenant gets one pass per `every` however many runners have the setting; a runner whose turn it is not skips
 * its pass. Each lead checked counts in crm_sync_reconcile_leads_total; a disagreement is logged with the contact,
 * the lead and the field paths (never their values: they are contact data). `close` stops starting reads and waits
 * for those in flight.
 */
export class ReconcileSchedule {
  private readonly timers = new Map<string, TimerHandle>();
  private readonly passes = new Set<Promise<void>>();
  private readonly stopping = new AbortController();
  private readonly owner: string;
  /** Lease renewals on their way to the store. */
  private readonly renewals = new Set<Promise<boolean>>();

  /** `owner`: who holds the job leases; keep one per daemon, so a reload's new schedule goes on holding them. */
  constructor(
    private readonly runner: Runner,
    private readonly tenants: readonly TenantConfig[],
    private readonly deps: { clock: Clock; logger: Logger; metrics: Metrics; store: Store; owner?: string },
  ) {
    this.owner = deps.owner ?? leaseOwnerId();
  }

  start(): void {
    for (const t of this.tenants) if (t.reconcile) this.schedule(t.name, t.reconcile);
  }

  async close(): Promise<void> {
    this.stopping.abort();
    for (const timer of this.timers.values()) timer.cancel();
    this.timers.clear();
    await Promise.all(this.passes);
  }

  private schedule(tenant: string, settings: ReconcileSettings): void {
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

  private async pass(tenant: string, settings: ReconcileSettings): Promise<void> {
    const { logger, metrics, clock, store } = this.deps;
    const log = logger.child({ tenant });
    const job = `reconcile:${tenant}`;
    try {
      if (!(await store.holdJob(job, this.owner, clock.now() + PASS_HOLD_MS, clock.now()))) {
        log.debug('reconcile: another runner has this pass');
        return;
      }
    } catch (err) {
      log.error({ err: errorFields(err) }, 'reconcile: pass failed');
      return;
    }
    // The pass stops if the lease is lost (this runner stalled past it and another took over) or the daemon stops.
    const lost = new AbortController();
    let renewal: TimerHandle | undefined;
    let ended = false;
    const renew = () => {
      renewal = clock.setTimer(() => {
        const renewing = store.holdJob(job, this.owner, clock.now() + PASS_HOLD_MS, clock.now());
        this.renewals.add(renewing);
        renewing.then(
          (held) => { if (held) { if (!ended) renew(); } else lost.abort(); },
          () => { if (!ended) renew(); }, // the store failing: the pass's own reads fail and say so; try again
        ).finally(() => this.renewals.delete(renewing));
      }, PASS_HOLD_MS / 3);
    };
    renew();
    let complete = false;
    log.info({ repair: settings.repair }, 'reconcile: pass started');
    try {
      const report = await this.runner.reconcile(tenant, {
        perSecond: settings.perSecond, repair: settings.repair, signal: AbortSignal.any([this.stopping.signal, lost.signal]),
        onCheck: (c) => {
          metrics.leadReconciled(tenant, c.state);
          if (!WORTH_A_LINE.has(c.state)) return;
          log.warn({
            contactId: c.contactId, leadId: c.leadId, state: c.state, crmLeadId: c.crmLeadId,
            fields: c.differences?.map((d) => d.path), error: c.error,
          }, `reconcile: lead ${c.state}`);
        },
      });
      complete = report.complete;
      if (complete) metrics.reconcilePassEnded(tenant, clock.now());
      log.info({ checked: report.checked, counts: report.counts, repaired: report.repaired, complete }, 'reconcile: pass finished');
    } catch (err) {
      log.error({ err: errorFields(err) }, 'reconcile: pass failed');
    } finally {
      ended = true;
      renewal?.cancel();
      // A renewal on its way must not land after the hand-over below.
      await Promise.allSettled([...this.renewals]);
      // A complete pass keeps the others off until the next one is due; otherwise the next runner may go now.
      const handOver = complete ? store.holdJob(job, this.owner, clock.now() + settings.everyMs, clock.now()) : store.releaseJob(job, this.owner);
      await handOver.catch((err: unknown) => log.error({ err: errorFields(err) }, 'reconcile: could not hand the pass over'));
    }
  }
}
