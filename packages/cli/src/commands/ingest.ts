import { createReadStream } from 'node:fs';
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

const utf8 = new TextDecoder('utf-8', { fatal: true });
const BOM = Buffer.from([0xef, 0xbb, 0xbf]);

/**
 * Each line of a file or stream (LF or CRLF), numbered from 1; blank lines are skipped, and a byte-order mark before
 * the first is dropped. A line that is not valid UTF-8 comes with `error` instead of `text`: decoded anyway, its bad
 * bytes would become U+FFFD, and a mangled name would reach the CRM (the daemon refuses such a body whole).
 */
export async function* ndjsonLines(source: string): AsyncGenerator<{ line: number; text: string; error?: undefined } | { line: number; error: string }> {
  const input = source === '-' ? process.stdin : createReadStream(source);
  let line = 0;
  const decode = (bytes: Buffer) => {
    line++;
    let b = bytes.at(-1) === 0x0d ? bytes.subarray(0, -1) : bytes;
    if (line === 1 && b.subarray(0, 3).equals(BOM)) b = b.subarray(3);
    try {
      const text = utf8.decode(b);
      return text.trim() === '' ? undefined : { line, text };
    } catch {
      return { line, error: 'not valid UTF-8 (save the file as UTF-8)' };
    }
  };
  // The pieces of a line not ended yet (one may span many chunks): joined once, when its end comes.
  const pending: Buffer[] = [];
  for await (const chunk of input) {
    const bytes = chunk as Buffer;
    let start = 0;
    let nl: number;
    while ((nl = bytes.indexOf(0x0a, start)) >= 0) {
      pending.push(bytes.subarray(start, nl));
      const item = decode(Buffer.concat(pending));
      pending.length = 0;
      if (item) yield item;
      start = nl + 1;
    }
    if (start < bytes.length) pending.push(bytes.subarray(start));
  }
  const last = pending.length > 0 ? decode(Buffer.concat(pending)) : undefined;
  if (last) yield last;
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

/** The rejections (by line) on stderr and the counts on stdout. Lines that are not JSON were not sent. */
function report(totals: Totals, io: CommandIO, notAccepted = 0): void {
  for (const r of totals.rejected.sort((a, b) => a.line - b.line)) io.err(describeRejection(r));
  const unsent = totals.rejected.length - totals.rejectedByDaemon;
  io.out(`read ${totals.sent + unsent + notAccepted} events, sent ${totals.sent}: accepted ${totals.accepted} (${totals.ignored} changed nothing), rejected ${totals.rejected.length}${unsent > 0 ? ` (${unsent} unreadable: not JSON or not UTF-8, not sent)` : ''}${notAccepted > 0 ? `; ${notAccepted} in a batch the daemon did not take (below)` : ''}`);
}

/**
 * Sends the file batch by batch and reports. A batch the daemon does not take (413, 401, unreachable after the
 * retries) stops the run: what the batches before it got is reported all the same, and where to go on from.
 */
async function ingestFile(source: string, client: DaemonClient, opts: { batchSize: number; tenant?: string }, io: CommandIO): Promise<Totals> {
  const totals: Totals = { sent: 0, accepted: 0, ignored: 0, rejected: [], rejectedByDaemon: 0 };
  let batch: Array<{ line: number; event: unknown }> = [];
  const send = async () => {
    try {
      await sendBatch(client, batch, opts.tenant, totals);
    } catch (err) {
      report(totals, io, batch.length);
      const [first, last] = [batch[0]!.line, batch.at(-1)!.line];
      io.err(`stopped at line ${first}: the batch of ${first === last ? `line ${first}` : `lines ${first}–${last}`} was not accepted; the lines before it were sent as counted above. Send the file again once the cause is fixed (redelivered eventIds change nothing).`);
      throw err;
    }
    batch = [];
  };
  for await (const item of ndjsonLines(source)) {
    const { line } = item;
    if (item.error !== undefined) {
      totals.rejected.push({ line, errors: [{ field: '(line)', message: item.error }] });
      continue;
    }
    try {
      batch.push({ line, event: JSON.parse(item.text) });
    } catch (err) {
      totals.rejected.push({ line, errors: [{ field: '(line)', message: `not JSON: ${(err as Error).message}` }] });
      continue;
    }
    if (batch.length >= opts.batchSize) await send();
  }
  if (batch.length > 0) await send();
  report(totals, io);
  return totals;
}

export const ingest: Command = {
  name: 'ingest',
  summary: 'Send an NDJSON file of contact events to a running daemon.',
  help: `Usage: crm-sync ingest <file.ndjson|-> [options]

Streams the file (or standard input for -), one contact event per line (CONTRACT.md), to the
daemon's POST /v1/events in batches. Each batch is acknowledged only once it is durable. Prints
every rejected event to stderr by line number with each field's reason, and a summary to stdout.
Lines that are not JSON (or not UTF-8) are reported and not sent. A batch refused with 503 or not
answered is sent again (up to ${SEND_ATTEMPTS} times): redelivered eventIds change nothing. A batch
refused otherwise (413, 401) stops the run, after reporting what the batches before it got.

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
    return totals.rejected.length === 0 ? EXIT.ok : EXIT.failure;
  },
};
