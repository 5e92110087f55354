import { createReadStream } from 'node:fs';
import { createInterface } from 'node:readline';
import type { FieldError } from '@crm-sync/core';
import { DaemonRequestError, type DaemonClient } from '@crm-sync/runner';
import { onePositional, stringOption } from '../args';
import { EXIT, UsageError, type Command, type CommandIO } from '../command';
import { DAEMON_CLIENT_HELP, DAEMON_CLIENT_OPTIONS, daemonClientFromArgs } from '../daemon-client';

const DEFAULT_BATCH = 500;
const SEND_ATTEMPTS = 5;

interface Rejection {
  line: number;
  eventId?: string;
  errors: FieldError[];
}

interface Totals {
  sent: number;
  accepted: number;
  ignored: number;
  rejected: Rejection[];
  /** How many of `rejected` the daemon refused (the others were not JSON, and not sent). */
  rejectedByDaemon: number;
}

/** Each line of an NDJSON file or stream, numbered from 1; blank lines are skipped. */
export async function* ndjsonLines(source: string): AsyncGenerator<{ line: number; text: string }> {
  const input = source === '-' ? process.stdin : createReadStream(source, 'utf8');
  let line = 0;
  for await (const text of createInterface({ input, crlfDelay: Infinity })) {
    line++;
    if (text.trim() !== '') yield { line, text };
  }
}

/** Sends one batch; a 503 or an unreachable daemon is tried again (redelivered eventIds change nothing). */
async function sendBatch(client: DaemonClient, batch: Array<{ line: number; event: unknown }>, tenant: string | undefined, totals: Totals): Promise<void> {
  for (let attempt = 1; ; attempt++) {
    try {
      const result = await client.ingest(batch.map((b) => b.event), tenant);
      totals.sent += batch.length;
      totals.accepted += result.accepted;
      totals.ignored += result.ignored;
      for (const r of result.rejected) totals.rejected.push({ line: batch[r.index].line, eventId: r.eventId, errors: r.errors });
      totals.rejectedByDaemon += result.rejected.length;
      return;
    } catch (err) {
      if (!(err instanceof DaemonRequestError && err.retryable) || attempt === SEND_ATTEMPTS) throw err;
      await new Promise((r) => setTimeout(r, 250 * 2 ** attempt));
    }
  }
}

function describeRejection(r: Rejection): string {
  return `line ${r.line}${r.eventId ? ` (eventId ${r.eventId})` : ''}: ${r.errors.map((e) => `${e.field}: ${e.message}`).join('; ')}`;
}

async function ingestFile(source: string, client: DaemonClient, opts: { batchSize: number; tenant?: string }, io: CommandIO): Promise<Totals> {
  const totals: Totals = { sent: 0, accepted: 0, ignored: 0, rejected: [], rejectedByDaemon: 0 };
  let batch: Array<{ line: number; event: unknown }> = [];
  for await (const { line, text } of ndjsonLines(source)) {
    try {
      batch.push({ line, event: JSON.parse(text) });
    } catch (err) {
      totals.rejected.push({ line, errors: [{ field: '(line)', message: `not JSON: ${(err as Error).message}` }] });
      continue;
    }
    if (batch.length >= opts.batchSize) {
      await sendBatch(client, batch, opts.tenant, totals);
      batch = [];
    }
  }
  if (batch.length > 0) await sendBatch(client, batch, opts.tenant, totals);
  for (const r of totals.rejected.sort((a, b) => a.line - b.line)) io.err(describeRejection(r));
  return totals;
}

export const ingest: Command = {
  name: 'ingest',
  summary: 'Send an NDJSON file of contact events to a running daemon.',
  help: `Usage: crm-sync ingest <file.ndjson|-> [options]

Streams the file (or standard input for -), one contact event per line (CONTRACT.md), to the
daemon's POST /v1/events in batches. Each batch is acknowledged only once it is durable. Prints
every rejected event to stderr by line number with each field's reason, and a summary to stdout.
Lines that are not JSON are reported and not sent. A batch refused with 503 or not answered is
sent again (up to ${SEND_ATTEMPTS} times): redelivered eventIds change nothing.

Options:
${DAEMON_CLIENT_HELP}
  --tenant <name>         Post to /v1/tenants/<name>/events: events without "tenant" belong to it.
  --batch <n>             Events per request. Default: ${DEFAULT_BATCH}.
  -h, --help              Show this help.

Exit status: 0 every event accepted, 1 some rejected or the daemon failed, 2 usage error.`,
  options: { ...DAEMON_CLIENT_OPTIONS, tenant: { type: 'string' }, batch: { type: 'string' } },
  async run({ values, positionals }, io) {
    const source = onePositional(positionals, '<file.ndjson|->');
    const batchText = stringOption(values, 'batch');
    const batchSize = batchText === undefined ? DEFAULT_BATCH : Number(batchText);
    if (!Number.isInteger(batchSize) || batchSize < 1) throw new UsageError(`--batch must be a positive whole number, got ${JSON.stringify(batchText)}`);
    const client = daemonClientFromArgs(values);
    const totals = await ingestFile(source, client, { batchSize, tenant: stringOption(values, 'tenant') }, io);
    // Lines that are not JSON are rejected here, without being sent: the counts add up to the lines read.
    const notJson = totals.rejected.length - totals.rejectedByDaemon;
    io.out(`read ${totals.sent + notJson} events, sent ${totals.sent}: accepted ${totals.accepted} (${totals.ignored} changed nothing), rejected ${totals.rejected.length}${notJson > 0 ? ` (${notJson} not JSON, not sent)` : ''}`);
    return totals.rejected.length === 0 ? EXIT.ok : EXIT.failure;
  },
};
