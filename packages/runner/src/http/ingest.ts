import type { IngestResult, RejectedEvent } from '../api';
import type { Logger } from '../log';
import type { Metrics } from '../metrics';
import type { ApiBackend } from './backend';
import { HttpError } from './errors';

export interface IngestContext {
  backend: ApiBackend;
  tenants: readonly string[];
  metrics: Metrics;
  logger: Logger;
}

const UNKNOWN_TENANT = 'unknown';

function field(event: unknown, name: string): unknown {
  return typeof event === 'object' && event !== null && !Array.isArray(event) ? (event as Record<string, unknown>)[name] : undefined;
}

function eventIdOf(event: unknown): string | undefined {
  const id = field(event, 'eventId');
  return typeof id === 'string' ? id : undefined;
}

/** The tenant label for metrics: a configured tenant or "unknown" (an event's own words never become a label). */
function tenantLabel(event: unknown, tenants: readonly string[]): string {
  const named = field(event, 'tenant');
  if (named === undefined || named === null || named === '') return tenants.length === 1 ? tenants[0] : UNKNOWN_TENANT;
  return typeof named === 'string' && tenants.includes(named) ? named : UNKNOWN_TENANT;
}

/**
 * Events posted to /v1/tenants/{tenant}/events belong to that tenant: an event naming none gets it, an event naming
 * another is refused. Returns the events to hand to the runner, with their index in the request.
 */
function scopeToTenant(events: unknown[], tenant: string): { forward: Array<{ index: number; event: unknown }>; rejected: RejectedEvent[] } {
  const forward: Array<{ index: number; event: unknown }> = [];
  const rejected: RejectedEvent[] = [];
  events.forEach((event, index) => {
    const named = field(event, 'tenant');
    if (named === undefined || named === null || named === '') {
      const scoped = typeof event === 'object' && event !== null && !Array.isArray(event) ? { ...event, tenant } : event;
      forward.push({ index, event: scoped });
    } else if (named !== tenant) {
      rejected.push({ index, eventId: eventIdOf(event), errors: [{ field: 'tenant', message: `must be ${JSON.stringify(tenant)} (the tenant in the URL) or left out` }] });
    } else {
      forward.push({ index, event });
    }
  });
  return { forward, rejected };
}

/**
 * Hands the events to the runner and answers only once it has made the good ones durable. A runner failure is a 503
 * (the client sends again; redelivered eventIds change nothing), never a 202.
 */
export async function ingestEvents(events: unknown[], pathTenant: string | undefined, ctx: IngestContext): Promise<{ status: number; result: IngestResult }> {
  const { forward, rejected: scopeRejected } = pathTenant
    ? scopeToTenant(events, pathTenant)
    : { forward: events.map((event, index) => ({ index, event })), rejected: [] };

  let fromRunner: IngestResult = { accepted: 0, ignored: 0, rejected: [] };
  if (forward.length > 0) {
    try {
      fromRunner = await ctx.backend.ingest(forward.map((f) => f.event));
    } catch (err) {
      ctx.logger.error({ err: { code: (err as { code?: string }).code, message: (err as Error).message }, events: forward.length }, 'ingest failed: events not stored');
      throw new HttpError(503, 'ERR_STORE_UNAVAILABLE', 'the events were not stored; send them again (redelivered eventIds are harmless)');
    }
  }
  const rejected = [...scopeRejected, ...fromRunner.rejected.map((r) => ({ ...r, index: forward[r.index].index }))]
    .sort((a, b) => a.index - b.index);
  const result: IngestResult = { accepted: fromRunner.accepted, ignored: fromRunner.ignored, rejected };

  const rejectedIdx = new Set(rejected.map((r) => r.index));
  const perTenant = new Map<string, { accepted: number; rejected: number }>();
  events.forEach((event, index) => {
    const label = pathTenant && !rejectedIdx.has(index) ? pathTenant : tenantLabel(event, ctx.tenants);
    const counts = perTenant.get(label) ?? { accepted: 0, rejected: 0 };
    counts[rejectedIdx.has(index) ? 'rejected' : 'accepted']++;
    perTenant.set(label, counts);
  });
  for (const [tenant, c] of perTenant) ctx.metrics.eventsIngested(tenant, c.accepted, c.rejected);
  ctx.metrics.eventsIgnoredCount(result.ignored);

  ctx.logger.debug({ accepted: result.accepted, ignored: result.ignored, rejected: rejected.length }, 'events ingested');
  return { status: result.accepted === 0 && rejected.length > 0 ? 400 : 202, result };
}
