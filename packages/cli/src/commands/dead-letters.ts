import type { DeadLetter } from '@crm-sync/runner';
import { stringOption } from '../args';
import { EXIT, UsageError, type Command } from '../command';
import { DAEMON_CLIENT_HELP, DAEMON_CLIENT_OPTIONS, daemonClientFromArgs } from '../daemon-client';

function describe(d: DeadLetter): string {
  const e = d.error;
  const where = [e.step && `step ${e.step}`, e.status !== undefined && `HTTP ${e.status}`].filter(Boolean).join(', ');
  return `${d.tenant} / ${d.contactId}  since ${d.at}  after ${d.attempts} attempt(s)${d.cause ? ` [${d.cause}]` : ''}\n`
    + `  ${e.code}: ${e.message}${where ? ` (${where})` : ''}${e.reason ? `\n  CRM: ${e.reason}` : ''}`;
}

export const deadLetters: Command = {
  name: 'dead-letters',
  summary: 'List the contacts whose sync failed for good, or replay them.',
  help: `Usage: crm-sync dead-letters list [--tenant T] [options]
       crm-sync dead-letters replay <tenant> <contactId> [options]
       crm-sync dead-letters replay --all [--tenant T] [options]

A contact is a dead letter after a permanent failure (the CRM refused it, or the mapping failed)
or once retryable failures outlast the retry budget. Its next change tries again by itself;
replay schedules it now with a fresh retry budget (fix the cause first).

Talks to the running daemon's HTTP API (GET /v1/dead-letters, POST /v1/dead-letters/replay).

Options:
  --tenant <name>         list: only this tenant; replay --all: only this tenant.
  --all                   replay: every dead letter (of --tenant, or of every tenant).
${DAEMON_CLIENT_HELP}
  --json                  list: print the API's JSON instead.
  -h, --help              Show this help.

Exit status: 0 done, 1 the daemon failed or is unreachable, 2 usage error.`,
  options: { ...DAEMON_CLIENT_OPTIONS, tenant: { type: 'string' }, all: { type: 'boolean' }, json: { type: 'boolean' } },
  async run({ values, positionals }, io) {
    const [action, ...args] = positionals;
    const tenant = stringOption(values, 'tenant');
    if (action === 'list') {
      if (args.length > 0) throw new UsageError(`list takes no arguments (use --tenant), got ${args.join(' ')}`);
      const list = await daemonClientFromArgs(values).deadLetters(tenant);
      io.out(values.json ? JSON.stringify(list, null, 2) : list.length === 0 ? 'no dead letters' : list.map(describe).join('\n'));
      return EXIT.ok;
    }
    if (action === 'replay') {
      let target: Parameters<ReturnType<typeof daemonClientFromArgs>['replay']>[0];
      if (values.all) {
        if (args.length > 0) throw new UsageError('replay --all takes no <tenant> <contactId> (use --tenant to limit it)');
        target = { all: true, ...(tenant ? { tenant } : {}) };
      } else {
        if (args.length !== 2) throw new UsageError('replay needs <tenant> <contactId>, or --all');
        target = { tenant: args[0]!, contactId: args[1]! };
      }
      const replayed = await daemonClientFromArgs(values).replay(target);
      io.out(`replayed ${replayed} contact(s)`);
      return EXIT.ok;
    }
    throw new UsageError(action === undefined ? 'missing action: list or replay' : `unknown action ${JSON.stringify(action)}: list or replay`);
  },
};
