import type { RunnerHooks } from '../api';
import { errorFields, type Logger } from '../log';
import type { Metrics } from '../metrics';

/**
 * Turns what the runner reports into metrics and log lines. Each line comes from a child logger carrying the tenant
 * and contact (and the failing step), so it explains itself; errors arrive classified and with secrets masked.
 */
export function daemonHooks(metrics: Metrics, logger: Logger): RunnerHooks {
  const forContact = (tenant: string, contactId: string) => logger.child({ tenant, contactId });
  return {
    onAccepted: ({ tenant, accepted, ignored }) => metrics.eventsAccepted(tenant, accepted, ignored),
    onSync: (e) => {
      metrics.syncFinished(e.tenant, e);
      // Failures are logged by onRetry / onDeadLetter, which know what happens next.
      if (e.outcome === 'failed') return;
      const log = forContact(e.tenant, e.contactId);
      const line = { outcome: e.outcome, leadId: e.leadId, calls: e.calls.map((c) => `${c.step} ${c.status ?? '-'}`), ms: Math.round(e.durationMs) };
      if (e.outcome === 'unchanged') log.debug(line, 'unchanged: no call');
      else if (e.outcome === 'skipped') log.info({ ...line, reason: e.reason }, 'skipped: the flow wrote nothing');
      else if (e.warnings) log.warn({ ...line, warnings: e.warnings }, 'synced, with warnings');
      else log.info(line, 'synced');
    },
    onRetry: ({ tenant, contactId, delayMs, error }) => {
      metrics.retryScheduled(tenant);
      forContact(tenant, contactId).warn({ step: error.step, error, retryInMs: delayMs }, 'sync failed; retrying');
    },
    onDeadLetter: ({ tenant, contactId, cause, error }) => {
      metrics.deadLettered(tenant);
      forContact(tenant, contactId).error({ step: error.step, cause, error }, 'sync dead-lettered');
    },
    onDeferred: ({ tenant, contactId, delayMs }) => {
      metrics.syncDeferred(tenant);
      forContact(tenant, contactId).debug({ retryInMs: delayMs }, 'another sync holds this phone or email; deferred');
    },
    onRateLimited: ({ tenant, pauseMs }) => {
      metrics.tenantPaused(tenant, pauseMs);
      logger.child({ tenant }).warn({ pauseMs }, 'CRM rate limit: tenant paused');
    },
    onError: ({ error, tenant, contactId, during }) => logger.child({ tenant, contactId }).error({ during, err: errorFields(error) }, 'runner error'),
  };
}
