/**
 * ingest: what durability costs on top of SQLite itself. The floor is raw better-sqlite3 inserting the same contact
 * rows into a WAL database with the store's synchronous setting (FULL), in transactions as large as the groups the
 * store commits (CALLERS × BATCH rows). Against it, in the same run: Runner.ingest (validation, phone normalization,
 * debounce schedule, counters) from CALLERS concurrent callers whose batches group commit joins; the store's accept
 * path alone (already validated contacts); and POST /v1/events through the daemon's HTTP API.
 */
import type { AddressInfo } from 'node:net';
import Database from 'better-sqlite3';
import { toContact } from '@crm-sync/core';
import { createApiServer, createLogger, Metrics, type AcceptItem } from '@crm-sync/runner';
import type { Benchmark, Figure } from '../figure';
import { interleave, median, medianRatio } from '../measure';
import { benchRunner } from '../lib/bench-runner';
import { eventBatches } from '../lib/events';
import { keepAliveAgent, rawRequest } from '../lib/raw-http';
import { scratchDir } from '../lib/tmp';
import { runConcurrently } from '../lib/workers';

const CALLERS = 8;
const BATCH = 50;
const ROUND = 4000;
const ROUNDS = 15;
const WINDOW = { quietMs: 300_000, maxWaitMs: 3_600_000 };
/** PRAGMA synchronous answers a number. */
const SYNCHRONOUS = ['OFF', 'NORMAL', 'FULL', 'EXTRA'];

export const ingest: Benchmark = {
  name: 'ingest',
  description: `Durable ingest of new contacts: ${CALLERS} concurrent callers sending batches of ${BATCH}, vs raw SQLite (WAL, synchronous=FULL) inserting the same rows in transactions of ${CALLERS * BATCH}.`,
  async run(): Promise<Figure[]> {
    const scratch = scratchDir('ingest');
    const bench = benchRunner({ storeFile: scratch.file('runner.db'), crmUrl: 'http://127.0.0.1:9' });
    const { runner, store } = bench;
    const raw = new Database(scratch.file('raw.db'));
    raw.pragma('journal_mode = WAL');
    const synchronous = SYNCHRONOUS[Number(store.db.pragma('synchronous', { simple: true }))]!;
    raw.pragma(`synchronous = ${synchronous}`);
    raw.exec('CREATE TABLE contacts (tenant TEXT NOT NULL, contact_id TEXT NOT NULL, contact TEXT NOT NULL, PRIMARY KEY (tenant, contact_id))');
    const insert = raw.prepare('INSERT INTO contacts (tenant, contact_id, contact) VALUES (?, ?, ?)');
    const insertAll = raw.transaction((rows: string[][]) => { for (const r of rows) insert.run(r[0], r[1], r[2]); });

    const metrics = new Metrics(() => runner.status());
    const server = createApiServer({ backend: runner, tenants: ['acme'], maxBodyBytes: 5 << 20, metrics, logger: createLogger({ level: 'silent' }), isReady: () => true });
    await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
    const eventsUrl = new URL(`http://127.0.0.1:${(server.address() as AddressInfo).port}/v1/events`);
    const agent = keepAliveAgent(CALLERS);

    let round = 0;
    const fresh = (who: string) => eventBatches(0, ROUND, BATCH, 1, { prefix: `${who}${round++}` });
    const sinceStart = async (work: () => Promise<unknown>) => {
      const started = performance.now();
      await work();
      return performance.now() - started;
    };
    const rawOp = () => {
      const rows = fresh('raw').flat().map((e) => toContact(e)).map((c) => [c.tenant, c.contactId, JSON.stringify(c)]);
      return sinceStart(async () => { for (let at = 0; at < rows.length; at += CALLERS * BATCH) insertAll(rows.slice(at, at + CALLERS * BATCH)); });
    };
    const runnerOp = () => {
      const batches = fresh('runner');
      return sinceStart(() => runConcurrently(batches, CALLERS, async (b) => {
        const r = await runner.ingest(b);
        if (r.accepted !== b.length) throw new Error(`ingest refused events: ${JSON.stringify(r.rejected[0])}`);
      }));
    };
    const acceptOp = () => {
      const batches = fresh('accept').map((b) => b.map((e): AcceptItem => ({ contact: toContact(e), window: WINDOW })));
      const now = Date.now();
      return sinceStart(() => runConcurrently(batches, CALLERS, (b) => store.accept(b, now)));
    };
    const httpOp = () => {
      const bodies = fresh('http').map((b) => JSON.stringify(b));
      return sinceStart(() => runConcurrently(bodies, CALLERS, async (body) => {
        const r = await rawRequest(agent, eventsUrl, 'POST', body);
        if (r.status !== 202) throw new Error(`POST /v1/events answered ${r.status}: ${r.body.slice(0, 200)}`);
      }));
    };

    try {
      const { msPerOp: [rawMs, runnerMs, acceptMs, httpMs] } = await interleave([rawOp, runnerOp, acceptOp, httpOp], { rounds: ROUNDS, batch: 1, warmup: 1 });
      const perSecond = (ms: number[]) => Math.round((ROUND * 1000) / median(ms));
      const ratio = (ms: number[]) => Math.round(100 / medianRatio(ms, rawMs!)) / 100;
      const runnerRatio = ratio(runnerMs!);
      const counts = await runner.status();
      if (counts.pending < ROUNDS * ROUND * 3) throw new Error(`expected every ingested contact pending, got ${counts.pending}`);
      return [
        { name: `raw SQLite inserts (WAL, synchronous=${synchronous}, ${CALLERS * BATCH} rows per transaction)`, value: perSecond(rawMs!), unit: 'rows/s' },
        { name: 'Runner.ingest (validation + store.accept, group commit)', value: perSecond(runnerMs!), unit: 'events/s' },
        { name: 'store.accept alone (contacts already validated)', value: perSecond(acceptMs!), unit: 'events/s' },
        { name: `POST /v1/events (JSON arrays of ${BATCH}, ${CALLERS} keep-alive connections)`, value: perSecond(httpMs!), unit: 'events/s' },
        { name: 'Runner.ingest ÷ raw SQLite', value: runnerRatio, unit: '×', target: '≥ 0.5', met: runnerRatio >= 0.5 },
        { name: 'store.accept ÷ raw SQLite', value: ratio(acceptMs!), unit: '×' },
        { name: 'POST /v1/events ÷ raw SQLite', value: ratio(httpMs!), unit: '×' },
      ];
    } finally {
      agent.destroy();
      await new Promise<void>((resolve) => { server.close(() => resolve()); server.closeAllConnections(); });
      await bench.close();
      raw.close();
      scratch.remove();
    }
  },
};
