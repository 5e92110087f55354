import type { RunnerHooks } from '../api';
import type { Metrics } from '../metrics';

/** Feeds the runner's reports into the metrics. (The runner logs them itself, with tenant and contact.) */
export function metricsHooks(metrics: Metrics): RunnerHooks {
  return {
    onAccepted: ({ tenant, accepted, ignored }) => metrics.eventsAccepted(tenant, accepted, ignored),
    onSync: (e) => metrics.syncFinished(e.tenant, e),
    onRetry: ({ tenant }) => metrics.retryScheduled(tenant),
    onDeadLetter: ({ tenant }) => metrics.deadLettered(tenant),
  };
}
