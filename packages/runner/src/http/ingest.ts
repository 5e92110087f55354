import type { IngestResult } from '../api';
import { errorFields, type Logger } from '../log';
import type { Metrics } from '../metrics';
import type { ApiBackend } from './backend';
import { HttpError } from './errors';

export interface IngestContext {
  backend: ApiBackend;
  tenants: readonly string[];
  metrics: Metrics;
  logger: Logger;
}

/** The tenant label for a refused event: a configured tenant or "unknown" (an event's own words never become a label). */
function tenantLabel(event: unknown, pathTenant: string | undefined, tenants: readonly string[]): string {
  if (pathTenant) return pathTenant;
  const named = typeof event === 'object' && event !== null ? (event as { tenant?: unknown }).tenant : undefined;
  if (named === undefined || named === null || named === '') return tenants.length === 1 ? tenants[0] : 'unknown';
  return typeof named === 'string' && tenants.includes(named) ? named : 'unknown';
}

/**
 * Hands the events to the runner and answers only once it has made the good ones durable: 202, or 400 when every
 * event was refused. A runner failure is a 503 (the client sends again; redelivered eventIds change nothing), never a 202.
 */
export async function ingestEvents(events: unknown[], pathTenant: string | undefined, ctx: IngestContext): Promise<{ status: number; result: IngestResult }> {
  let result: IngestResult;
  try {
    result = await ctx.backend.ingest(events, { tenant: pathTenant });
  } catch (err) {
    ctx.logger.error({ err: errorFields(err), events: events.length }, 'ingest failed: events not stored');
    throw new HttpError(503, 'ERR_STORE_UNAVAILABLE', 'the events were not stored; send them again (redelivered eventIds are harmless)');
  }
  // Accepted events are counted by the runner's onAccepted hook; refused ones here, where the intended tenant is known.
  const perTenant = new Map<string, number>();
  for (const r of result.rejected) {
    const label = tenantLabel(events[r.index], pathTenant, ctx.tenants);
    perTenant.set(label, (perTenant.get(label) ?? 0) + 1);
  }
  for (const [tenant, n] of perTenant) ctx.metrics.eventsRejected(tenant, n);
  ctx.logger.debug({ accepted: result.accepted, ignored: result.ignored, rejected: result.rejected.length }, 'events ingested');
  return { status: result.accepted === 0 && result.rejected.length > 0 ? 400 : 202, result };
}
