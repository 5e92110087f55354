import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { ManualClock } from '../clock';
import type { TenantConfig } from '../config/types';
import { ReconcileSchedule } from '../daemon/reconcile-schedule';
import { createLogger } from '../log';
import { Metrics } from '../metrics';
import type { ReconcileOptions, ReconcileReport } from '../reconcile';
import type { Runner } from '../runner';
import { SqliteStore } from '../store/sqlite/sqlite-store';

const EVERY = 60_000;
const JOB = 'reconcile:acme';
const tenants = [{ name: 'acme', reconcile: { everyMs: EVERY, repair: false } }] as unknown as TenantConfig[];

describe('ReconcileSchedule: passes taken in turn through the store\'s job lease', () => {
  let dir: string;
  let store: SqliteStore;
  let clock: ManualClock;
  let passes: number;
  let schedule: ReconcileSchedule;
  /** A runner whose passes take `passMs` on the manual clock and go through every contact. */
  const runner = (passMs = 0) => ({
    async reconcile(tenant: string, _opts: ReconcileOptions): Promise<ReconcileReport> {
      passes++;
      if (passMs > 0) await new Promise<void>((resolve) => clock.setTimer(resolve, passMs));
      return { tenant, checked: 1, counts: {} as ReconcileReport['counts'], repaired: 0, complete: true };
    },
  }) as unknown as Runner;

  beforeEach(() => {
    dir = mkdtempSync(join(tmpdir(), 'crm-sync-schedule-'));
    store = new SqliteStore(join(dir, 'crm-sync.db'));
    clock = new ManualClock();
    passes = 0;
  });
  afterEach(async () => {
    await schedule?.close();
    await store.close();
    rmSync(dir, { recursive: true, force: true });
  });

  const start = (r: Runner) => {
    const metrics = new Metrics(() => ({ pending: 0, inFlight: 0, retrying: 0, deadLetters: 0, leads: 0 }));
    schedule = new ReconcileSchedule(r, tenants, { clock, logger: createLogger({ level: 'silent' }), metrics, store, owner: 'me' });
    schedule.start();
  };

  it('a pass every `every`; after it, the lease keeps other runners off until the next is due', async () => {
    start(runner(5_000));
    await clock.advance(EVERY - 1);
    expect(passes).toBe(0);
    await clock.advance(1);
    expect(passes).toBe(1);
    // During the pass: held.
    expect(await store.holdJob(JOB, 'other', clock.now() + 1, clock.now())).toBe(false);
    await clock.advance(5_000);
    // Ended at T+65s: held until the next pass is due (T+125s), and not one moment longer.
    expect(await store.holdJob(JOB, 'other', clock.now() + 1, clock.now() + EVERY - 1)).toBe(false);
    expect(await store.holdJob(JOB, 'other', clock.now() + EVERY + 10, clock.now() + EVERY)).toBe(true);
  });

  it('skips its pass while another runner holds the lease, and runs the next once it is free', async () => {
    start(runner());
    expect(await store.holdJob(JOB, 'other', clock.now() + EVERY + 10, clock.now())).toBe(true);
    await clock.advance(EVERY);
    expect(passes).toBe(0);
    await store.releaseJob(JOB, 'other');
    await clock.advance(EVERY);
    expect(passes).toBe(1);
  });

  it('a renewal still on its way when the pass ends neither re-arms nor lands after the hand-over', async () => {
    const calls: Array<{ until: number; at: number }> = [];
    let answerRenewal: ((held: boolean) => void) | undefined;
    const slowStore = {
      holdJob: (_name: string, _owner: string, until: number, now: number) => {
        calls.push({ until, at: now });
        // The renewal (the second call) hangs until the test answers it.
        if (calls.length === 2) return new Promise<boolean>((resolve) => { answerRenewal = resolve; });
        return Promise.resolve(true);
      },
      releaseJob: async () => undefined,
    } as unknown as SqliteStore;
    const metrics = new Metrics(() => ({ pending: 0, inFlight: 0, retrying: 0, deadLetters: 0, leads: 0 }));
    schedule = new ReconcileSchedule(runner(25_000), tenants, { clock, logger: createLogger({ level: 'silent' }), metrics, store: slowStore, owner: 'me' });
    schedule.start();
    const t0 = clock.now();
    await clock.advance(EVERY + 20_000); // the pass began at +60 s; its renewal went out at +80 s
    expect(calls).toHaveLength(2);
    await clock.advance(5_000); // the pass ends at +85 s, with the renewal unanswered
    expect(calls).toHaveLength(2); // the hand-over waits for it
    answerRenewal!(true);
    await clock.advance(0);
    expect(calls).toHaveLength(3);
    expect(calls[2]).toEqual({ at: t0 + EVERY + 25_000, until: t0 + EVERY + 25_000 + EVERY });
    await clock.advance(EVERY - 1); // nothing re-armed: no call until the next pass is due
    expect(calls).toHaveLength(3);
  });
});
