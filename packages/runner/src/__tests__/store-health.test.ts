import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { Writable } from 'node:stream';
import { Redis } from 'ioredis';
import { describeWithRedis, RedisServer } from '@crm-sync/testkit';
import { StoreHealth } from '../daemon/store-health';
import { createLogger } from '../log';
import { RedisStore } from '../store/redis/redis-store';
import { SqliteStore } from '../store/sqlite/sqlite-store';
import { contact } from './store-suite';

const T0 = Date.parse('2024-05-06T09:00:00.000Z');
const WINDOW = { quietMs: 50, maxWaitMs: 200 };
// Errors are matched by code, not with toThrow: better-sqlite3's native module is loaded once per jest worker, so
// its errors may come from another test file's realm, which toThrow does not take for an Error.
const item = (contactId: string) => [{ contact: contact({ contactId }), window: WINDOW }];

/** A logger whose JSON lines are kept. */
function capturedLogger() {
  const lines: Array<Record<string, unknown>> = [];
  const destination = new Writable({ write(chunk, _enc, done) { lines.push(JSON.parse(String(chunk))); done(); } });
  return { logger: createLogger({ level: 'info', destination }), lines };
}

describe('StoreHealth over SQLite (writes refused with PRAGMA query_only, as a read-only disk refuses them)', () => {
  let dir: string;
  let sqlite: SqliteStore;
  let now: number;
  let log: ReturnType<typeof capturedLogger>;
  let health: StoreHealth;
  beforeEach(() => {
    dir = mkdtempSync(join(tmpdir(), 'crm-sync-health-'));
    sqlite = new SqliteStore(join(dir, 'store.db'));
    now = T0;
    log = capturedLogger();
    health = new StoreHealth(sqlite, { now: () => now, logger: log.logger, probeEveryMs: 1000, holdMs: 3000 });
  });
  afterEach(async () => {
    await sqlite.close();
    rmSync(dir, { recursive: true, force: true });
  });

  it('a failed write marks the store down with its code; reads do not; probes find it up once writes work for the hold', async () => {
    expect(await health.check()).toEqual({ up: true });
    await health.store.accept(item('c1'), now);

    sqlite.db.pragma('query_only = ON');
    now += 10;
    await expect(health.store.accept(item('c2'), now)).rejects.toMatchObject({ code: 'SQLITE_READONLY' });
    expect(health.up).toBe(false);
    // Reads still work and say nothing about writes.
    expect(await health.store.counts(now)).toMatchObject({ pending: 1 });
    expect(health.up).toBe(false);
    const down = { up: false, failingSince: new Date(T0 + 10).toISOString(), error: 'SQLITE_READONLY' };
    now += 1000;
    expect(await health.check()).toEqual(down); // probed: still refused (the hold starts again from here)

    sqlite.db.pragma('query_only = OFF');
    now += 2000;
    expect(await health.check()).toEqual(down); // the probe works, but within the hold after the last failure
    now += 500;
    expect(await health.check()).toEqual(down); // no probe before the interval
    now += 500;
    expect(await health.check()).toEqual({ up: true });
    expect(await health.store.contactStatus('acme', 'c2', now)).toBeUndefined(); // the refused accept left nothing

    const messages = log.lines.map((l) => [l.level, l.msg]);
    expect(messages).toEqual([
      ['warn', 'store: a write failed; /readyz answers 503 until writes work again'],
      ['info', 'store: writes work again'],
    ]);
    expect(log.lines[0]).toMatchObject({ err: { code: 'SQLITE_READONLY' } });
  });

  it('some writes working while others fail (a full disk) keep it down; any write after the hold brings it up', async () => {
    sqlite.db.pragma('query_only = ON');
    // A claim takes the write lock even with nothing due.
    await expect(health.store.claimDue('acme', { now, limit: 1, leaseMs: 1000, owner: 'o' })).rejects.toMatchObject({ code: 'SQLITE_READONLY' });
    sqlite.db.pragma('query_only = OFF');
    now += 2000;
    expect(await health.store.accept(item('c1'), now)).toEqual(['accepted']);
    expect(health.up).toBe(false);
    sqlite.db.pragma('query_only = ON');
    now += 2000;
    await expect(health.store.accept(item('c2'), now)).rejects.toMatchObject({ code: 'SQLITE_READONLY' });
    sqlite.db.pragma('query_only = OFF');
    now += 2999;
    expect(await health.store.accept(item('c3'), now)).toEqual(['accepted']);
    expect(health.up).toBe(false);
    now += 1;
    expect(await health.store.accept(item('c4'), now)).toEqual(['accepted']);
    expect(health.up).toBe(true);
  });

  it('callers checking at once share one probe', async () => {
    sqlite.db.pragma('query_only = ON');
    await expect(health.store.accept(item('c1'), now)).rejects.toMatchObject({ code: 'SQLITE_READONLY' });
    const probes = jest.spyOn(sqlite, 'probe');
    sqlite.db.pragma('query_only = OFF');
    now += 3000;
    const reports = await Promise.all([health.check(), health.check(), health.check()]);
    expect(reports).toEqual([{ up: true }, { up: true }, { up: true }]);
    expect(probes).toHaveBeenCalledTimes(1);
  });
});

let server: RedisServer | undefined;
describeWithRedis('StoreHealth over Redis', () => {
  beforeAll(async () => { server = await RedisServer.start(); });
  afterAll(async () => { await server?.stop(); });

  it('Redis out of memory (noeviction) marks the store down with the reply code OOM, and up once it has room', async () => {
    const store = await RedisStore.open(server!.url(), { prefix: 'health:' });
    const admin = new Redis(server!.url());
    let now = T0;
    const health = new StoreHealth(store, { now: () => now, logger: capturedLogger().logger });
    try {
      await admin.config('SET', 'maxmemory', '1');
      await expect(health.store.accept(item('c1'), now)).rejects.toMatchObject({ message: expect.stringMatching(/^OOM/) });
      expect(await health.check()).toEqual({ up: false, failingSince: new Date(T0).toISOString(), error: 'OOM' });
      await admin.config('SET', 'maxmemory', '0');
      now += 5000;
      expect(await health.check()).toEqual({ up: true });
    } finally {
      await admin.config('SET', 'maxmemory', '0');
      admin.disconnect();
      await store.close();
    }
  });
});
