import { GotHttpClient, SyncEngine } from '@crm-sync/core';
import { openStore, prepareTenants, Runner, type LeadCheck, type ReconcileReport } from '@crm-sync/runner';
import { positiveNumberOption, type Values } from '../args';
import { EXIT, UsageError, type Command, type CommandIO } from '../command';
import { untilShutdown } from '../shutdown';
import { DAEMON_CONFIG_HELP, DAEMON_CONFIG_OPTIONS, daemonConfigFromArgs } from './run';

const PROGRESS_EVERY = 1000;
const MAX_VALUE_CHARS = 80;

function shown(v: unknown): string {
  if (v === undefined) return 'nothing';
  const s = JSON.stringify(v);
  return s.length > MAX_VALUE_CHARS ? `${s.slice(0, MAX_VALUE_CHARS)}…` : s;
}

/** One line for a check worth an operator's attention; undefined for the others (match, present, changed). */
export function describeCheck(c: LeadCheck): string | undefined {
  const who = `${c.contactId}${c.leadId === undefined ? '' : ` (lead ${c.leadId})`}`;
  switch (c.state) {
    case 'differs':
      return `${who}: differs: ${c.differences!.map((d) => `${d.path} sent ${shown(d.sent)}, the CRM has ${shown(d.crm)}`).join('; ')}`;
    case 'missing':
      return `${who}: missing: the CRM's fetch finds no lead for this contact`;
    case 'other-lead':
      return `${who}: other lead: the CRM's fetch finds lead ${c.crmLeadId} instead (a duplicate or a merge: resolve it in the CRM)`;
    case 'not-synced':
      return `${who}: not synced (pending, in flight, failing or unknown): nothing to compare`;
    case 'failed':
      return `${who}: could not read the lead: ${c.error!.code}: ${c.error!.message}`;
    default:
      return undefined;
  }
}

export function summarize(r: ReconcileReport): string {
  const c = r.counts;
  const parts = [`${r.checked} checked`, `${c.match} match`, `${c.differs} differ`, `${c.missing} missing`, `${c['other-lead']} other lead`, `${c.failed} failed`];
  if (c.present > 0) parts.push(`${c.present} present (fields not compared: the mapping's fetch has no leadFields)`);
  if (c.changed > 0) parts.push(`${c.changed} changed meanwhile (left to their sync)`);
  if (c['not-synced'] > 0) parts.push(`${c['not-synced']} not synced`);
  if (r.repaired > 0) parts.push(`${r.repaired} marked to be sent again`);
  return `reconcile ${r.tenant}${r.complete ? '' : ' (stopped before the end)'}: ${parts.join(' · ')}`;
}

async function runReconcile(tenant: string, contactIds: string[], values: Values, io: CommandIO): Promise<number> {
  const perSecond = positiveNumberOption(values, 'per-second', { integer: false, max: 10_000 });
  const limit = positiveNumberOption(values, 'limit', { integer: true, max: Number.MAX_SAFE_INTEGER });
  const json = values.json === true;
  const config = daemonConfigFromArgs(values);
  const tenants = prepareTenants(config);
  if (!tenants.some((t) => t.name === tenant)) throw new UsageError(`unknown tenant ${JSON.stringify(tenant)}; the config has ${tenants.map((t) => t.name).join(', ')}`);
  // On Redis the tenant's request budget is shared with the running daemons (rateLimits): reads and syncs keep to it together.
  const { store, rateLimits } = await openStore(config.store);
  const runner = new Runner({ tenants, store, rateLimits, engine: new SyncEngine({ http: new GotHttpClient({ allowHosts: config.allowHosts }) }) });
  const stop = new AbortController();
  const finished = new AbortController();
  void untilShutdown(io.signal ? AbortSignal.any([finished.signal, io.signal]) : finished.signal).then(() => stop.abort());
  let checked = 0;
  try {
    const report = await runner.reconcile(tenant, {
      ...(contactIds.length > 0 ? { contactIds } : {}), perSecond, limit, repair: values.repair === true, signal: stop.signal,
      onCheck: (check) => {
        if (json) io.out(JSON.stringify(check));
        else {
          const line = describeCheck(check);
          if (line) io.out(line);
        }
        if (++checked % PROGRESS_EVERY === 0) io.err(`reconcile: ${checked} checked…`);
      },
    });
    io.out(json ? JSON.stringify({ report }) : summarize(report));
    const c = report.counts;
    const trouble = c.differs + c.missing + c['other-lead'] + c.failed;
    return trouble === 0 && (report.complete || limit !== undefined) && !stop.signal.aborted ? EXIT.ok : EXIT.failure;
  } finally {
    finished.abort();
    await store.close();
  }
}

export const reconcile: Command = {
  name: 'reconcile',
  summary: 'Compare the lead store with the CRM: read synced leads back and report (or --repair) what differs.',
  help: `Usage: crm-sync reconcile <tenant> [<contactId>...] --config <crm-sync.yaml> [options]
       crm-sync reconcile <tenant> [<contactId>...] --mapping <file> [run's quick-start flags]

A sync that the CRM answered with success is recorded as synced, and the contact is not sent again
until it changes. If the CRM later lost that write (a restore from a backup, a lead deleted or edited
by hand, an integration that answers success and drops the data), nothing would say so. reconcile
reads each synced contact's lead back with the mapping's fetch (as a sync sends it with the stored
lead id) and compares the payload last synced with the lead's fields (the fetch's leadFields reader;
default body.lead_fields, docs/writing-a-mapping.md). It never writes to the CRM; --repair marks the
contacts whose lead differs or is missing to be sent again, which the running daemon does at the
resync rate. A contact whose fetch finds another lead (a duplicate, a merge) is only reported.

Every synced contact of the tenant, or the contacts named. Reads are paced at --per-second, as they
share the CRM's rate limit with the daemon's syncs. It opens the daemon's store itself (the same
--config): it may run beside the daemon.

Output: a line per contact that differs, is missing, has another lead, could not be read, or (named)
is not synced, then a summary. Values are shown as sent and as the CRM has them: contact data.

Options:
  --per-second <n>        CRM reads started a second. Default: half the tenant's request rate, else 5.
  --limit <n>             Check at most this many contacts.
  --repair                Mark the contacts that differ or are missing to be sent again.
  --json                  A JSON line per contact checked, then {"report": ...}.

${DAEMON_CONFIG_HELP}
  -h, --help              Show this help.

Exit status: 0 every lead checked matches (or is present), 1 some differ, are missing, have another
lead or could not be read (or it was interrupted), 2 usage error.`,
  options: { ...DAEMON_CONFIG_OPTIONS, 'per-second': { type: 'string' }, limit: { type: 'string' }, repair: { type: 'boolean' }, json: { type: 'boolean' } },
  async run({ values, positionals }, io) {
    const [tenant, ...contactIds] = positionals;
    if (tenant === undefined) throw new UsageError('missing <tenant>');
    return runReconcile(tenant, contactIds, values, io);
  },
};
