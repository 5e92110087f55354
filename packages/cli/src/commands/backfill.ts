import { createHash } from 'node:crypto';
import { createReadStream, mkdirSync, readFileSync, renameSync, writeFileSync } from 'node:fs';
import { basename, join } from 'node:path';
import { GotHttpClient, SyncEngine, type FieldError } from '@crm-sync/core';
import { openStore, prepareTenants, Runner, type ContactStatus, type DaemonConfig } from '@crm-sync/runner';
import { stringOption } from '../args';
import { EXIT, UsageError, type Command, type CommandIO } from '../command';
import { untilShutdown } from '../shutdown';
import { ndjsonLines } from './ingest';
import { DAEMON_CONFIG_HELP, DAEMON_CONFIG_OPTIONS, daemonConfigFromArgs } from './run';

const DEFAULT_BATCH = 200;
const SETTLED: ReadonlySet<ContactStatus['state']> = new Set(['synced', 'dead-letter', 'idle']);
const POLL_MS = 50;
const PLAIN_PROGRESS_EVERY_MS = 5000;

/** What a backfill has finished, kept in the data dir so an interrupted run resumes after the last settled batch. */
interface Progress {
  file: string;
  sha256: string;
  totalLines: number;
  /** Every line up to this one (1-based) is synced, dead-lettered or rejected. */
  doneLine: number;
  accepted: number;
  rejected: number;
  deadLetters: number;
  done: boolean;
  updatedAt: string;
}

async function hashAndCount(file: string): Promise<{ sha256: string; lines: number }> {
  const hash = createHash('sha256');
  let lines = 0;
  let last = 10;
  for await (const chunk of createReadStream(file)) {
    const buf = chunk as Buffer;
    hash.update(buf);
    for (let i = 0; i < buf.length; i++) if (buf[i] === 10) lines++;
    if (buf.length > 0) last = buf[buf.length - 1];
  }
  return { sha256: hash.digest('hex'), lines: lines + (last === 10 ? 0 : 1) };
}

class ProgressFile {
  readonly path: string;
  constructor(dataDir: string, sha256: string) {
    const dir = join(dataDir, 'backfill');
    mkdirSync(dir, { recursive: true });
    this.path = join(dir, `${sha256.slice(0, 16)}.json`);
  }
  read(): Progress | undefined {
    try {
      return JSON.parse(readFileSync(this.path, 'utf8')) as Progress;
    } catch {
      return undefined;
    }
  }
  /** Write-then-rename: a crash mid-write leaves the previous progress, never half a file. */
  write(p: Progress): void {
    writeFileSync(`${this.path}.tmp`, JSON.stringify({ ...p, updatedAt: new Date().toISOString() }, null, 2));
    renameSync(`${this.path}.tmp`, this.path);
  }
}

// --- CSV: a header row, then one contact per row. Quoted cells with "" escapes; a cell may not span lines. ---

const CSV_FIELDS = new Set(['eventId', 'tenant', 'contactId', 'phone', 'email', 'name', 'ts']);

export function parseCsvRow(line: string): string[] {
  const cells: string[] = [];
  let i = 0;
  for (;;) {
    let cell = '';
    if (line[i] === '"') {
      i++;
      for (;;) {
        const q = line.indexOf('"', i);
        if (q < 0) throw new Error('a quoted cell is not closed (cells may not span lines)');
        cell += line.slice(i, q);
        i = q + 1;
        if (line[i] === '"') { cell += '"'; i++; continue; }
        break;
      }
      if (i < line.length && line[i] !== ',') throw new Error(`unexpected ${JSON.stringify(line[i])} after a quoted cell`);
    } else {
      const comma = line.indexOf(',', i);
      cell = line.slice(i, comma < 0 ? line.length : comma);
      i = comma < 0 ? line.length : comma;
    }
    cells.push(cell);
    if (i >= line.length) return cells;
    i++; // the comma
  }
}

/** A CSV row as a contact event: known columns by name, `tags` split on `;`, every other column an attribute. */
export function csvEvent(header: string[], cells: string[]): Record<string, unknown> {
  if (cells.length !== header.length) throw new Error(`has ${cells.length} cells, the header has ${header.length}`);
  const event: Record<string, unknown> = {};
  const attributes: Record<string, string> = {};
  header.forEach((column, i) => {
    const value = cells[i]!;
    if (value === '') return;
    if (CSV_FIELDS.has(column)) event[column] = value;
    else if (column === 'tags') event.tags = value.split(';').map((t) => t.trim()).filter(Boolean);
    else attributes[column] = value;
  });
  if (Object.keys(attributes).length > 0) event.attributes = attributes;
  return event;
}

/**
 * The CSV's header row, checked before any row is read: a file whose rows could only all be rejected (no contactId
 * or phone column, a column named twice) is refused whole. `text` undefined: the row is not valid UTF-8.
 */
function csvHeader(file: string, line: number, text: string | undefined): string[] {
  const where = `${basename(file)} line ${line} (the header row)`;
  if (text === undefined) throw new Error(`${where}: not valid UTF-8 (save the file as UTF-8)`);
  let header: string[];
  try {
    header = parseCsvRow(text).map((h) => h.trim());
  } catch (err) {
    throw new Error(`${where}: ${(err as Error).message}`);
  }
  const twice = header.find((h, i) => header.indexOf(h) !== i);
  if (twice !== undefined) throw new Error(`${where}: the column ${JSON.stringify(twice)} is named twice`);
  if (header.includes('__proto__')) throw new Error(`${where}: the column "__proto__" is not a usable attribute name (JavaScript reserves it): rename the column`);
  const missing = ['contactId', 'phone'].filter((c) => !header.includes(c));
  if (missing.length > 0) {
    throw new Error(`${where}: no ${missing.join(' or ')} column (the columns are ${header.map((h) => JSON.stringify(h)).join(', ')}; names are case-sensitive: contactId, phone, email, name, tags, eventId, tenant, ts, and any other column is an attribute)`);
  }
  return header;
}

/** Each event of the file with its line number; lines that cannot be read are returned as rejections. */
async function* fileEvents(file: string): AsyncGenerator<{ line: number; event?: unknown; error?: FieldError }> {
  const csv = /\.csv$/i.test(file);
  let header: string[] | undefined;
  for await (const item of ndjsonLines(file)) {
    const { line } = item;
    if (csv && header === undefined) {
      header = csvHeader(file, line, item.error === undefined ? item.text : undefined);
      continue;
    }
    if (item.error !== undefined) {
      yield { line, error: { field: csv ? '(row)' : '(line)', message: item.error } };
      continue;
    }
    try {
      yield { line, event: header ? csvEvent(header, parseCsvRow(item.text)) : JSON.parse(item.text) };
    } catch (err) {
      yield { line, error: { field: csv ? '(row)' : '(line)', message: (err as Error).message } };
    }
  }
}

function formatSeconds(s: number): string {
  if (!Number.isFinite(s)) return '?';
  const m = Math.floor(s / 60);
  return m > 0 ? `${m}m${String(Math.round(s % 60)).padStart(2, '0')}s` : `${Math.round(s)}s`;
}

/** How long a run must have gone before its rate (and ETA) is shown. */
const MIN_RATE_SECONDS = 2;

/** Count, rate and ETA on stderr: redrawn in place on a terminal, a line every few seconds otherwise. */
export class ProgressLine {
  private readonly started: number;
  private lastPlain = 0;
  private lastPlainLine = -1;
  constructor(private readonly total: number, private readonly startLine: number, private readonly tty: boolean, private readonly io: CommandIO, private readonly now: () => number = Date.now) {
    this.started = now();
  }

  update(line: number, rejected: number, final = false): void {
    const done = line - this.startLine;
    const elapsed = (this.now() - this.started) / 1000;
    // A rate over the first moments (a resumed run's first batch, lines skipped in a blink) says nothing yet.
    const measured = elapsed >= MIN_RATE_SECONDS || final;
    const rate = elapsed > 0 ? done / elapsed : 0;
    const eta = rate > 0 ? (this.total - line) / rate : Infinity;
    const speed = measured ? `${rate.toFixed(1)} lines/s · ETA ${formatSeconds(eta)}` : 'measuring the rate…';
    const text = `backfill: ${line}/${this.total} lines (${Math.floor((line / Math.max(1, this.total)) * 100)}%) · ${speed} · rejected ${rejected}`;
    if (this.tty) {
      process.stderr.write(`\r\x1b[2K${text}${final ? '\n' : ''}`);
    } else if (line !== this.lastPlainLine && (final || this.now() - this.lastPlain >= PLAIN_PROGRESS_EVERY_MS)) {
      this.lastPlain = this.now();
      this.lastPlainLine = line;
      this.io.err(text);
    }
  }
}

/**
 * Waits until each contact is synced or dead-lettered (a retrying one is waited for); resolves to the dead letters.
 * `onProgress` hears how many have settled at each look.
 */
async function untilSettled(runner: Runner, contacts: Array<{ tenant: string; contactId: string }>, stopped: () => boolean, onProgress: (settled: number) => void): Promise<number> {
  let waiting = contacts;
  let dead = 0;
  while (waiting.length > 0 && !stopped()) {
    const states = await Promise.all(waiting.map((c) => runner.contact(c.tenant, c.contactId)));
    dead += states.filter((s) => s?.state === 'dead-letter').length;
    waiting = waiting.filter((_, i) => !SETTLED.has(states[i]?.state ?? 'idle'));
    onProgress(contacts.length - waiting.length);
    if (waiting.length > 0) await new Promise((r) => setTimeout(r, POLL_MS));
  }
  return dead;
}

async function runBackfill(file: string, config: DaemonConfig, opts: { batchSize: number; restart: boolean }, io: CommandIO): Promise<number> {
  const { sha256, lines } = await hashAndCount(file);
  const progressFile = new ProgressFile(config.dataDir, sha256);
  const previous = opts.restart ? undefined : progressFile.read();
  if (previous?.done) {
    io.out(`backfill: ${basename(file)} was already backfilled (${previous.accepted} accepted, ${previous.rejected} rejected); --restart runs it again`);
    return EXIT.ok;
  }
  const progress: Progress = previous ?? { file, sha256, totalLines: lines, doneLine: 0, accepted: 0, rejected: 0, deadLetters: 0, done: false, updatedAt: '' };
  if (previous) io.err(`backfill: resuming ${basename(file)} after line ${previous.doneLine}`);

  const tenants = prepareTenants(config);
  const { store, rateLimits } = await openStore(config.store);
  const runner = new Runner({ tenants, store, rateLimits, engine: new SyncEngine({ http: new GotHttpClient({ allowHosts: config.allowHosts }) }), retry: config.retry, leaseMs: config.leaseMs });
  runner.start();
  let stopped = false;
  const finished = new AbortController();
  void untilShutdown(io.signal ? AbortSignal.any([finished.signal, io.signal]) : finished.signal).then(() => { stopped = !finished.signal.aborted; });
  const bar = new ProgressLine(lines, progress.doneLine, Boolean(process.stderr.isTTY), io);

  let batch: Array<{ line: number; event: unknown }> = [];
  const flush = async (lastLine: number) => {
    if (batch.length > 0) {
      const result = await runner.ingest(batch.map((b) => b.event), { immediate: true, contacts: true });
      progress.accepted += result.accepted;
      progress.rejected += result.rejected.length;
      for (const r of result.rejected) io.err(`line ${batch[r.index]!.line}${r.eventId ? ` (eventId ${r.eventId})` : ''}: ${r.errors.map((e) => `${e.field}: ${e.message}`).join('; ')}`);
      // As validation read them (a blank tenant is the default one), so each is waited for where it was stored.
      const contacts = new Map<string, { tenant: string; contactId: string }>();
      for (const c of result.contacts!) contacts.set(`${c.tenant}\u0000${c.contactId}`, c);
      // The progress line moves while a batch syncs (a tenant's rate limit can make one take minutes): its lines are
      // counted done in the proportion of its contacts that have settled.
      const from = progress.doneLine;
      const settledLine = (settled: number) => from + Math.floor(((lastLine - from) * settled) / Math.max(1, contacts.size));
      progress.deadLetters += await untilSettled(runner, [...contacts.values()], () => stopped, (settled) => bar.update(settledLine(settled), progress.rejected));
      if (stopped) return;
    }
    progress.doneLine = lastLine;
    progressFile.write(progress);
    bar.update(lastLine, progress.rejected);
    batch = [];
  };

  try {
    let lastLine = progress.doneLine;
    for await (const item of fileEvents(file)) {
      if (stopped) break;
      if (item.line <= progress.doneLine) continue;
      lastLine = item.line;
      if (item.error) {
        progress.rejected++;
        io.err(`line ${item.line}: ${item.error.field}: ${item.error.message}`);
      } else {
        batch.push({ line: item.line, event: item.event });
      }
      if (batch.length >= opts.batchSize) await flush(lastLine);
    }
    if (!stopped) await flush(Math.max(lastLine, lines));
  } finally {
    finished.abort();
    await runner.stop({ drainMs: config.drainMs });
    await store.close();
  }
  if (stopped) {
    io.err(`\nbackfill: interrupted; lines up to ${progress.doneLine} are done. Run the same command again to resume.`);
    return EXIT.failure;
  }
  progress.done = true;
  progressFile.write(progress);
  bar.update(lines, progress.rejected, true);
  const dead = progress.deadLetters;
  io.out(`backfill: done: ${progress.accepted} events accepted, ${progress.rejected} rejected${dead > 0 ? `, ${dead} dead letter(s): see crm-sync dead-letters list` : ''}`);
  return progress.rejected === 0 && dead === 0 ? EXIT.ok : EXIT.failure;
}

export const backfill: Command = {
  name: 'backfill',
  summary: 'Sync every contact in an NDJSON or CSV file now, without the quiet window; resumable.',
  help: `Usage: crm-sync backfill <file.ndjson|file.csv> --config <crm-sync.yaml> [options]
       crm-sync backfill <file.ndjson|file.csv> --mapping <file> [run's quick-start flags]

Syncs every contact in the file now (no quiet window), through the same store and lead ids as
the daemon, with each tenant's concurrency and rate limit. Works batch by batch: a batch is done
when each of its contacts is synced or dead-lettered; progress (the file's SHA-256 and the last
done line) is kept in <dataDir>/backfill/, so an interrupted backfill (Ctrl-C, crash) resumes
after the last done batch when run again. Progress (count, rate, ETA) goes to stderr.

NDJSON: one contact event per line (CONTRACT.md). CSV: a header row; columns eventId, tenant,
contactId, phone, email, name, ts by name, tags separated by ";", every other column becomes an
attribute. Cells may be quoted ("" for a quote) but not span lines.

It may run while the daemon runs on the same SQLite file (the two share the work under leases).

${DAEMON_CONFIG_HELP}

Options:
  --batch <n>             Contacts per batch. Default: ${DEFAULT_BATCH}.
  --restart               Ignore recorded progress and start from the first line.
  -h, --help              Show this help.

Exit status: 0 every contact synced, 1 some rejected or dead-lettered (or interrupted), 2 usage error.`,
  options: { ...DAEMON_CONFIG_OPTIONS, batch: { type: 'string' }, restart: { type: 'boolean' } },
  async run({ values, positionals }, io) {
    if (positionals.length !== 1) throw new UsageError('give one <file.ndjson|file.csv>');
    const batchText = stringOption(values, 'batch');
    const batchSize = batchText === undefined ? DEFAULT_BATCH : Number(batchText);
    if (!Number.isInteger(batchSize) || batchSize < 1) throw new UsageError(`--batch must be a positive whole number, got ${JSON.stringify(batchText)}`);
    return runBackfill(positionals[0]!, daemonConfigFromArgs(values), { batchSize, restart: values.restart === true }, io);
  },
};
