import { positiveNumberOption } from '../args';
import { EXIT, UsageError, type Command } from '../command';
import { DAEMON_CLIENT_HELP, DAEMON_CLIENT_OPTIONS, daemonClientFromArgs } from '../daemon-client';

export const resync: Command = {
  name: 'resync',
  summary: 'Send contacts to the CRM again even if they have not changed (after a mapping change, or to repair the CRM).',
  help: `Usage: crm-sync resync <tenant> <contactId>... [options]
       crm-sync resync <tenant> --all [options]

A contact whose payload has not changed since its last sync is normally not sent again. resync
marks contacts so that their next sync is sent whatever the stored hash says: after the tenant's
mapping changed (a field added, renamed or reshaped), or when the CRM lost what it was sent (a
restore from a backup, leads deleted by hand). Each marked contact is synced once more through the
usual path (update by the stored lead id, or fetch → update | create).

Synced contacts are spread out at --per-second (default: half the tenant's request rate when it
has one, else 10 a second), so the tenant's new changes are not queued behind a whole resync.
Pending and retrying contacts keep their schedule; one in flight is synced again after its
attempt. Dead letters are left alone: use dead-letters replay.

Talks to the running daemon's HTTP API (POST /v1/tenants/{tenant}/resync).

Options:
  --all                   Every contact of the tenant.
  --per-second <n>        How many synced contacts a second become due (default as above).
${DAEMON_CLIENT_HELP}
  -h, --help              Show this help.

Exit status: 0 done, 1 the daemon failed or is unreachable, 2 usage error.`,
  options: { ...DAEMON_CLIENT_OPTIONS, all: { type: 'boolean' }, 'per-second': { type: 'string' } },
  async run({ values, positionals }, io) {
    const [tenant, ...contactIds] = positionals;
    if (tenant === undefined) throw new UsageError('missing <tenant>');
    if (values.all && contactIds.length > 0) throw new UsageError('--all takes no contact ids');
    if (!values.all && contactIds.length === 0) throw new UsageError('name the contacts (<contactId>...) or use --all');
    const perSecond = positiveNumberOption(values, 'per-second', { integer: false, max: 10_000 });
    const target = values.all ? { all: true as const } : { contactIds };
    const n = await daemonClientFromArgs(values).resync(tenant, target, perSecond);
    io.out(`marked ${n} contact(s) of ${tenant} to be sent again`);
    return EXIT.ok;
  },
};
