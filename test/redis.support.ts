/**
 * Several `crm-sync run --store redis://…` processes sharing one real redis-server, against the reference CRM in the
 * test process; and what the CRM's request log says about them (calls per contact, overlapping syncs).
 */
import { DaemonClient } from '@crm-sync/runner';
import type { ReferenceCrm } from '@crm-sync/testkit';
import { CRM_KEY, SEED_MAPPING, spawnDaemon, TENANT, type ChildDaemon } from './daemon.support';

export { RedisServer, describeWithRedis } from '@crm-sync/testkit';

export interface Runners {
  all: ChildDaemon[];
  clients: DaemonClient[];
  /** kill -9 every runner still alive. */
  killAll(): Promise<void>;
}

/** Starts `n` runners by the quick-start flags (tenant acme), all on `storeUrl`. */
export async function startRunners(n: number, storeUrl: string, crm: ReferenceCrm, flags: string[] = []): Promise<Runners> {
  const args = ['--store', storeUrl, '--mapping', SEED_MAPPING, '--tenant', TENANT, '--base-url', crm.url, '--allow-host', '127.0.0.1',
    '--listen', '127.0.0.1:0', ...flags];
  const all = await Promise.all(Array.from({ length: n }, () => spawnDaemon(args, { SEED_CRM_AUTH_KEY: CRM_KEY })));
  return {
    all,
    clients: all.map((d) => new DaemonClient(d.url)),
    async killAll() {
      for (const d of all) {
        if (d.proc.exitCode !== null || d.proc.signalCode !== null) continue;
        d.proc.kill('SIGKILL');
        await d.exited;
      }
    },
  };
}

export interface ContactCalls {
  /** By route, how many requests the contact's syncs made. */
  routes: Record<string, number>;
  /** [start, end] of each request, in ms. */
  intervals: Array<[number, number]>;
}

/** The CRM's request log grouped by contact phone (fetch: its query; create: its body; update: its lead's phone). */
export function callsByPhone(crm: ReferenceCrm): Map<string, ContactCalls> {
  const phoneOfLead = new Map(crm.leads().map((l) => [l.lead_id, l.phone]));
  const byPhone = new Map<string, ContactCalls>();
  for (const r of crm.requests()) {
    const phone = r.route === 'fetch' ? r.query.phone
      : r.route === 'create' ? (r.body as { phone?: string } | null)?.phone
        : phoneOfLead.get(decodeURIComponent(r.path.split('/').pop() ?? ''));
    if (phone === undefined) throw new Error(`cannot tell the contact of ${r.method} ${r.path}`);
    const calls = byPhone.get(phone) ?? { routes: {}, intervals: [] };
    calls.routes[r.route] = (calls.routes[r.route] ?? 0) + 1;
    const start = Date.parse(r.at);
    calls.intervals.push([start, start + r.durationMs]);
    byPhone.set(phone, calls);
  }
  return byPhone;
}

/**
 * Phones whose requests overlapped in time: two syncs of one contact in flight at once. One sync's requests are
 * sequential, so any overlap is two syncs. `at` has millisecond resolution, hence 1 ms of slack.
 */
export function overlappingPhones(calls: Map<string, ContactCalls>): string[] {
  const overlapping: string[] = [];
  for (const [phone, { intervals }] of calls) {
    const sorted = [...intervals].sort((a, b) => a[0] - b[0]);
    if (sorted.some(([start], i) => i > 0 && start < sorted[i - 1]![1] - 1)) overlapping.push(phone);
  }
  return overlapping;
}

export const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));
