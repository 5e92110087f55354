/**
 * Disk and store faults under the daemon (a child process), with real filesystems (./faulty-disk.ts; Linux, root):
 * - the data directory's filesystem fills up: ingest answers 503 (never 202) while it is full, nothing accepted is
 *   lost, and the same process takes events again once space is freed;
 * - the filesystem turns read-only under the running daemon (ext4 errors=remount-ro): ingest answers 503; after the
 *   operator's repair (stop the daemon, unmount, fsck, mount, start) every accepted change reaches the CRM.
 * The platform's sender keeps its at-least-once duty throughout: a batch without a 202 is sent again.
 */
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { planStream, startReferenceCrm, type ReferenceCrm } from '@crm-sync/testkit';
import { CRM_KEY, get, SEED_MAPPING } from '../daemon.support';
import { faultyDiskUnavailable, LoopExt4Disk, TmpfsDisk } from './faulty-disk';
import { AtLeastOnceSender, crmFigures, LONG, reportFigures, RestartableDaemon, sendStream, sleep, writeSoakConfig } from './soak-support';

const CONTACTS = LONG ? 2_000 : 300;
const SPAN_MS = LONG ? 30_000 : 6_000;
const SLICE_MS = 100;
const SLICES = SPAN_MS / SLICE_MS;
const SEED = Number(process.env.SOAK_SEED ?? 20241108);

const unavailable = faultyDiskUnavailable();
if (unavailable) process.stdout.write(`\ndisk-fault tests skipped: ${unavailable}\n`);
const onRealDisks = unavailable ? test.skip : test;

let dir: string;
let crm: ReferenceCrm;
let daemon: RestartableDaemon | undefined;
let unmount: (() => void) | undefined;

beforeEach(async () => {
  dir = mkdtempSync(join(tmpdir(), 'crm-sync-disk-'));
  crm = await startReferenceCrm({ auth: { style: 'auth-key', key: CRM_KEY } });
});
afterEach(async () => {
  await daemon?.kill();
  daemon = undefined;
  unmount?.();
  unmount = undefined;
  await crm.close();
  rmSync(dir, { recursive: true, force: true });
});

async function startOn(dataDir: string): Promise<RestartableDaemon> {
  const d = new RestartableDaemon(writeSoakConfig(dir, {
    crmUrl: crm.url, mappingFile: SEED_MAPPING, quiet: '200ms', maxWait: '1s', lease: '1s',
    retry: { base: '50ms', max: '500ms', budget: '10m' }, concurrency: 8, dataDir,
  }));
  await d.start();
  return d;
}

/** Resolves once ingest has answered 503 (the WAL may still have room for a few commits after the fault). */
async function refused(sender: AtLeastOnceSender, what: string): Promise<void> {
  const deadline = Date.now() + 3000;
  while (!sender.answers[STORE_REFUSAL]) {
    if (Date.now() > deadline) throw new Error(`ingest still answered 202 three seconds after ${what}`);
    await sleep(20);
  }
}

const STORE_REFUSAL = '503 ERR_STORE_UNAVAILABLE';
const FAULT_AT = Math.floor(SLICES * 0.3);

/** What /readyz and the store_up gauge say now. */
async function readiness(url: string): Promise<{ status: number; body: unknown; storeUp: string | undefined }> {
  const ready = await get(`${url}/readyz`);
  const metrics = await get(`${url}/metrics`);
  return { status: ready.status, body: ready.body, storeUp: /^crm_sync_store_up (\d)$/m.exec(String(metrics.body))?.[1] };
}

/** /readyz until it answers 200 (the store counts as up once writes have worked for 5 s), then what it said. */
async function readyAgain(url: string): Promise<Awaited<ReturnType<typeof readiness>>> {
  const deadline = Date.now() + 15_000;
  for (;;) {
    const r = await readiness(url);
    if (r.status === 200 || Date.now() > deadline) return r;
    await sleep(250);
  }
}

const READY = { status: 200, body: { status: 'ready' }, storeUp: '1' };
const storeDown = (code: RegExp) => ({
  status: 503, storeUp: '0',
  body: { status: 'not ready', reason: 'store', store: { up: false, failingSince: expect.any(String), error: expect.stringMatching(code) } },
});

const refusals = (sender: AtLeastOnceSender) => Object.entries(sender.answers).filter(([answer]) => answer !== '202' && answer !== '400');

onRealDisks('the disk fills up: 503 while full, nothing accepted lost, the same process recovers once space is freed', async () => {
  const disk = new TmpfsDisk(dir, 16);
  unmount = () => disk.unmount();
  daemon = await startOn(join(disk.mountPoint, 'data'));
  const live = daemon;
  const pid = live.pid;
  const { plan, expected } = planStream({ contacts: CONTACTS, seed: SEED, spanMs: SPAN_MS });
  const sender = new AtLeastOnceSender(() => live.client);
  let fullFor = 0;
  let whileFull: unknown;
  let filled!: () => void;
  const full = new Promise<void>((r) => { filled = r; });

  await Promise.all([
    sendStream(plan, sender, { sliceMs: SLICE_MS, onSlice: (i) => { if (i === FAULT_AT) { disk.fill(); filled(); } } }),
    (async () => {
      await full;
      const since = Date.now();
      await refused(sender, 'the disk filled up');
      await sleep(1000); // full for a while: syncs and their store writes fail too
      whileFull = await readiness(live.url);
      disk.free();
      fullFor = Date.now() - since;
    })(),
  ]);
  await sender.drain(20_000);
  const status = await live.client.waitUntilIdle({ timeoutMs: 60_000 });
  const figures = crmFigures(crm, expected);
  reportFigures('disk-full', {
    events: plan.length, 'ingest answers': sender.answers, 'events re-sent': sender.totals.resentEvents, 'full for': `${fullFor} ms`,
    'CRM calls': `${figures.calls} ${JSON.stringify(figures.byRoute)}`, leads: figures.leads,
    duplicates: figures.check.duplicates, 'lost (missing)': figures.check.missing, mismatches: figures.check.mismatched, 'dead letters': status.deadLetters,
  });

  expect(refusals(sender)).toEqual([[STORE_REFUSAL, expect.any(Number)]]);
  // Not ready while full (SQLITE_FULL, or an I/O error of the write that hit the full disk), ready again after.
  expect(whileFull).toEqual(storeDown(/^SQLITE_(FULL|IOERR)/));
  expect(await readyAgain(live.url)).toEqual(READY);
  expect(live.pid).toBe(pid); // no restart: the same process took events again
  expect(status.deadLetters).toBe(0);
  expect(figures.check.problems.slice(0, 10)).toEqual([]);
}, LONG ? 600_000 : 90_000);

onRealDisks('the filesystem turns read-only: 503, then after stop, fsck and mount every accepted change reaches the CRM', async () => {
  const disk = new LoopExt4Disk(dir, 64);
  unmount = () => disk.unmount();
  daemon = await startOn(join(disk.mountPoint, 'data'));
  const live = daemon;
  const { plan, expected } = planStream({ contacts: CONTACTS, seed: SEED + 1, spanMs: SPAN_MS });
  const sender = new AtLeastOnceSender(() => live.client);
  let stopped: { code: number | null; signal: NodeJS.Signals | null } | undefined;
  let whileReadOnly: unknown;
  let failed!: () => void;
  const readOnly = new Promise<void>((r) => { failed = r; });

  await Promise.all([
    sendStream(plan, sender, { sliceMs: SLICE_MS, onSlice: (i) => { if (i === FAULT_AT) { disk.failReadOnly(); failed(); } } }),
    (async () => {
      await readOnly;
      await refused(sender, 'the filesystem turned read-only');
      await sleep(500);
      whileReadOnly = await readiness(live.url);
      // The operator's repair: the filesystem can only be unmounted once the daemon has closed its files.
      stopped = await live.terminate(15_000);
      disk.repair();
      await live.start();
    })(),
  ]);
  await sender.drain(20_000);
  const status = await live.client.waitUntilIdle({ timeoutMs: 60_000 });
  const figures = crmFigures(crm, expected);
  reportFigures('disk-read-only', {
    events: plan.length, 'ingest answers': sender.answers, 'events re-sent': sender.totals.resentEvents,
    'SIGTERM on a read-only store': JSON.stringify(stopped),
    'CRM calls': `${figures.calls} ${JSON.stringify(figures.byRoute)}`, leads: figures.leads,
    duplicates: figures.check.duplicates, 'lost (missing)': figures.check.missing, mismatches: figures.check.mismatched, 'dead letters': status.deadLetters,
  });

  expect(sender.answers[STORE_REFUSAL]).toBeGreaterThan(0);
  expect(whileReadOnly).toEqual(storeDown(/^SQLITE_(READONLY|IOERR)/));
  expect(await readyAgain(live.url)).toEqual(READY);
  // While the daemon was down for the repair the sender found nobody listening; nothing else was refused.
  expect(refusals(sender).map(([answer]) => answer).filter((a) => a !== STORE_REFUSAL && a !== '0 ERR_DAEMON_UNREACHABLE')).toEqual([]);
  expect(status.deadLetters).toBe(0);
  expect(figures.check.problems.slice(0, 10)).toEqual([]);
}, LONG ? 600_000 : 90_000);
