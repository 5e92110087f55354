import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import { randomBytes } from 'node:crypto';
import { configFromFlags, createLogger, DaemonClient, LOG_LEVELS, startDaemon, type Daemon, type LogLevel } from '@crm-sync/runner';
import { checkLeads, countKinds, planStream, startReferenceCrm, type PlannedEvent, type ReferenceCrm } from '@crm-sync/testkit';
import { stringOption } from '../args';
import { EXIT, UsageError, type Command, type CommandIO } from '../command';
import { summarize } from './reconcile';

const TENANT = 'demo';
const SEED_MAPPING = resolve(__dirname, '../../../../mappings/seed-contract.yaml');
const QUIET = '300ms';
const MAX_WAIT = '2s';
/** The stream is posted over this long, in slices of SLICE_MS. */
const STREAM_MS = 3000;
const SLICE_MS = 100;

function countBy<T>(items: T[], key: (t: T) => string): Record<string, number> {
  const out: Record<string, number> = {};
  for (const i of items) out[key(i)] = (out[key(i)] ?? 0) + 1;
  return out;
}

async function runDemo(opts: { contacts: number; seed: number; logLevel: LogLevel; keep: boolean }, io: CommandIO): Promise<number> {
  const started = Date.now();
  const key = randomBytes(12).toString('hex');
  const crm: ReferenceCrm = await startReferenceCrm({ auth: { style: 'auth-key', key } });
  // The seed mapping reads its key from the environment (env:SEED_CRM_AUTH_KEY); put back what was there after.
  const previousKey = process.env.SEED_CRM_AUTH_KEY;
  process.env.SEED_CRM_AUTH_KEY = key;
  const dataDir = mkdtempSync(join(tmpdir(), 'crm-sync-demo-'));
  let daemon: Daemon | undefined;
  try {
    const config = configFromFlags({
      mapping: SEED_MAPPING, tenant: TENANT, baseUrl: crm.url, quiet: QUIET, maxWait: MAX_WAIT,
      listen: '127.0.0.1:0', data: dataDir, allowHosts: ['127.0.0.1'], logLevel: opts.logLevel,
    }, {});
    daemon = await startDaemon(config, { logger: createLogger({ level: opts.logLevel }) });
    io.out(`crm-sync demo: reference CRM at ${crm.url}, daemon at ${daemon.url} (quiet ${QUIET}, max wait ${MAX_WAIT}, SQLite in ${dataDir})`);
    const { plan, expected } = planStream({ contacts: opts.contacts, seed: opts.seed, spanMs: STREAM_MS });
    const kinds = countKinds(plan);
    io.out(`streaming ${plan.length} events for ${expected.size} contacts over ~${STREAM_MS / 1000}s: ${kinds.change} changes in bursts, `
      + `${kinds.redelivery} redeliveries, ${kinds['out-of-order']} out of order, ${kinds.bad} bad`);

    const client = new DaemonClient(daemon.url);
    const totals = { accepted: 0, ignored: 0, rejected: [] as string[] };
    const t0 = Date.now();
    for (let from = 0, slice = 0; from < plan.length; slice++) {
      const until = (slice + 1) * SLICE_MS;
      const batch: PlannedEvent[] = [];
      while (from < plan.length && plan[from]!.at < until) batch.push(plan[from++]!);
      const wait = t0 + slice * SLICE_MS - Date.now();
      if (wait > 0) await new Promise((r) => setTimeout(r, wait));
      if (batch.length === 0) continue;
      const result = await client.ingest(batch.map((p) => p.event));
      totals.accepted += result.accepted;
      totals.ignored += result.ignored;
      for (const r of result.rejected) totals.rejected.push(r.errors.map((e) => `${e.field}: ${e.message}`).join('; '));
    }
    const streamed = Date.now();
    const status = await client.waitUntilIdle({ timeoutMs: 20_000 });

    const leads = crm.leads();
    const calls = countBy(crm.requests(), (r) => r.route);
    const rejectedBy = countBy(totals.rejected, (r) => r.split(':')[0]!);
    io.out([
      '',
      'Summary',
      `  events:    ${plan.length} sent · ${totals.accepted} accepted (${totals.ignored} changed nothing: redelivered or out of order) · ${totals.rejected.length} rejected`,
      ...(totals.rejected.length > 0 ? [`  rejected:  ${Object.entries(rejectedBy).map(([f, n]) => `${f} ×${n}`).join(', ')}`] : []),
      `  contacts:  ${expected.size} · leads stored ${status.leads} · dead letters ${status.deadLetters}`,
      `  CRM calls: ${Object.entries(calls).map(([r, n]) => `${r} ${n}`).join(' · ')} (total ${crm.requests().length}, ${(crm.requests().length / expected.size).toFixed(2)} per contact)`,
      `  CRM leads: ${leads.length}`,
      `  time:      streamed in ${((streamed - t0) / 1000).toFixed(1)}s, idle ${((Date.now() - streamed) / 1000).toFixed(1)}s later; ${((Date.now() - started) / 1000).toFixed(1)}s in all`,
    ].join('\n'));

    const { problems } = checkLeads(leads, expected);
    if (problems.length > 0) {
      io.err(`\nCHECK FAILED: ${problems.length} problem(s):\n${problems.slice(0, 10).map((p) => `  ${p}`).join('\n')}`);
      return EXIT.failure;
    }
    io.out(`\nCHECK OK: the CRM holds exactly one lead per contact (${expected.size}), each equal to the contact's final state.`);
    // The same question from crm-sync's side: its lead store read back against the CRM (crm-sync reconcile).
    const report = await daemon.runner.reconcile(TENANT, { perSecond: 5000, concurrency: 8 });
    io.out(summarize(report));
    const c = report.counts;
    if (c.match !== expected.size || report.checked !== expected.size) {
      io.err(`RECONCILE FAILED: expected all ${expected.size} leads to match`);
      return EXIT.failure;
    }
    return EXIT.ok;
  } finally {
    await daemon?.stop();
    await crm.close();
    if (previousKey === undefined) delete process.env.SEED_CRM_AUTH_KEY;
    else process.env.SEED_CRM_AUTH_KEY = previousKey;
    if (opts.keep) io.out(`data kept in ${dataDir}`);
    else rmSync(dataDir, { recursive: true, force: true });
  }
}

function intOption(raw: string | undefined, name: string, fallback: number, min: number): number {
  if (raw === undefined) return fallback;
  const n = Number(raw);
  if (!Number.isInteger(n) || n < min) throw new UsageError(`--${name} must be a whole number ≥ ${min}, got ${JSON.stringify(raw)}`);
  return n;
}

export const demo: Command = {
  name: 'demo',
  summary: 'Run the reference CRM and the daemon, stream contact changes through them, and check the result.',
  help: `Usage: crm-sync demo [options]

Starts the reference CRM (CONTRACT.md, auth-key) and the daemon in this process (SQLite in a
temp dir, quiet window ${QUIET}, max wait ${MAX_WAIT}, mapping mappings/seed-contract.yaml pointed at
the CRM), posts a generated stream of contact changes to POST /v1/events (bursts, redeliveries,
out-of-order and bad events), waits until the daemon is idle (GET /v1/status), prints a summary
(events accepted/rejected, contacts, CRM calls by kind, leads), checks that the CRM holds
exactly one lead per contact equal to the contact's final state, then reconciles: reads every
synced lead back from the CRM and compares it with the payload last synced (crm-sync reconcile).

Options:
  --contacts <n>          How many contacts. Default: 200 (about 1200 events).
  --seed <n>              Seed of the generated stream. Default: 1.
  --log-level <level>     The daemon's log level (JSON lines on stdout). Default: warn.
  --keep                  Keep the temp data dir (the SQLite file) and print its path.
  -h, --help              Show this help.

Exit status: 0 the check passed, 1 it failed, 2 usage error.`,
  options: { contacts: { type: 'string' }, seed: { type: 'string' }, 'log-level': { type: 'string' }, keep: { type: 'boolean' } },
  async run({ values, positionals }, io) {
    if (positionals.length > 0) throw new UsageError(`unexpected argument ${JSON.stringify(positionals[0])}`);
    const level = stringOption(values, 'log-level') ?? 'warn';
    if (!LOG_LEVELS.includes(level as LogLevel)) throw new UsageError(`--log-level must be one of ${LOG_LEVELS.join(', ')}`);
    return runDemo({
      contacts: intOption(stringOption(values, 'contacts'), 'contacts', 200, 1),
      seed: intOption(stringOption(values, 'seed'), 'seed', 1, 0),
      logLevel: level as LogLevel,
      keep: values.keep === true,
    }, io);
  },
};
