import type { AttemptRecord, ContactStatus, StatusCounts } from '@crm-sync/runner';
import { EXIT, UsageError, type Command } from '../command';
import { DAEMON_CLIENT_HELP, DAEMON_CLIENT_OPTIONS, daemonClientFromArgs } from '../daemon-client';

function describeCounts(s: StatusCounts): string {
  return `pending ${s.pending} · in flight ${s.inFlight} · retrying ${s.retrying} · dead letters ${s.deadLetters} · leads ${s.leads}`;
}

function describeAttempt(a: AttemptRecord): string[] {
  const head = `  ${a.at}  ${a.outcome}${a.leadId ? ` lead ${a.leadId}` : ''}${a.error ? `  ${a.error.code}: ${a.error.message}${a.error.reason ? ` (CRM: ${a.error.reason})` : ''}` : ''}`;
  const calls = a.calls.map((c) => `      ${c.step.padEnd(6)} ${c.method} ${c.url} → ${c.status ?? 'no answer'} in ${Math.round(c.durationMs)} ms${c.reason ? ` (${c.reason})` : ''}`);
  return [head, ...(a.reason ? [`      reason: ${a.reason}`] : []), ...calls, ...(a.warnings ?? []).map((w) => `      warning: ${w}`)];
}

export function describeContact(c: ContactStatus): string {
  return [
    `${c.tenant} / ${c.contactId}`,
    `  lead id:      ${c.leadId ?? '(none yet)'}`,
    `  state:        ${c.state}${c.dueAt ? ` (next sync due ${c.dueAt})` : ''}`,
    `  last outcome: ${c.lastOutcome ?? '(never synced)'} (${c.attempts} ${c.attempts === 1 ? 'attempt' : 'attempts'} in all, every sync counted)`,
    ...(c.resyncAt ? [`  resync:       asked for at ${c.resyncAt}; sent at its next sync even if unchanged`] : []),
    c.history.length > 0 ? 'history (newest first):' : 'history: none',
    ...c.history.flatMap(describeAttempt),
  ].join('\n');
}

export const status: Command = {
  name: 'status',
  summary: 'Show the daemon\'s counts, or one contact\'s lead id, pending state and sync history.',
  help: `Usage: crm-sync status [<tenant> <contactId>] [options]

Without arguments: the running daemon's counts (pending, in flight, retrying, dead letters,
leads). With a tenant and contact id: that contact's lead id, state (pending, in-flight,
retrying, dead-letter, synced), when its next sync is due, and its last attempts with every
CRM call (method, URL with secrets masked, status, duration, the CRM's reason).

Reads the running daemon's HTTP API (GET /v1/status, GET /v1/tenants/{t}/contacts/{id}).

Options:
${DAEMON_CLIENT_HELP}
  --json                  Print the API's JSON instead.
  -h, --help              Show this help.

Exit status: 0 shown, 1 unknown contact or the daemon is unreachable, 2 usage error.`,
  options: { ...DAEMON_CLIENT_OPTIONS, json: { type: 'boolean' } },
  async run({ values, positionals }, io) {
    if (positionals.length !== 0 && positionals.length !== 2) throw new UsageError('give both <tenant> and <contactId>, or neither');
    const client = daemonClientFromArgs(values);
    const print = (value: unknown, text: string) => io.out(values.json ? JSON.stringify(value, null, 2) : text);
    if (positionals.length === 0) {
      const counts = await client.status();
      print(counts, describeCounts(counts));
      return EXIT.ok;
    }
    const [tenant, contactId] = positionals as [string, string];
    const contact = await client.contact(tenant, contactId);
    if (!contact) {
      io.err(`crm-sync status: tenant ${tenant} has no contact ${JSON.stringify(contactId)}`);
      return EXIT.failure;
    }
    print(contact, describeContact(contact));
    return EXIT.ok;
  },
};
