import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import type { SyncOptions } from '@crm-sync/core';
import type { TenantSettings } from '../api';
import { ManualClock } from '../clock';
import { runAttempt, type SyncEngineLike } from '../dispatch/attempt';
import { SqliteStore } from '../store/sqlite/sqlite-store';
import { contact } from './store-suite';

const T0 = Date.parse('2024-05-06T09:00:00Z');
const WINDOW = { quietMs: 50, maxWaitMs: 1000 };
/** A mapping without a fetch: no identity hold, so only the lease decides. */
const tenant = { name: 'acme', mapping: { name: 'm', definition: { timeoutMs: 1000 }, endpoints: { create: {} }, flow: { requires: ['create'] } } } as unknown as TenantSettings;

let dir: string;
let store: SqliteStore;
beforeEach(() => {
  dir = mkdtempSync(join(tmpdir(), 'crm-sync-attempt-'));
  store = new SqliteStore(join(dir, 'runner.db'));
});
afterEach(async () => {
  await store.close();
  rmSync(dir, { recursive: true, force: true });
});

describe('an attempt whose claim was handed back before it created', () => {
  it('does not send the create: its create intent is refused, and nothing is dead-lettered or retried', async () => {
    const clock = new ManualClock(T0);
    await store.accept([{ contact: contact(), window: WINDOW }], T0);
    const [claim] = await store.claimDue('acme', { now: T0 + 50, limit: 1, leaseMs: 30_000, owner: 'stopping' });
    let created = false;
    const engine: SyncEngineLike = {
      renderPayload: async () => ({ payload: { phone: '+919876543210' }, hash: 'h' }),
      readLead: async () => { throw new Error('not used'); },
      sync: async (_mapping, _contact, opts: SyncOptions = {}) => {
        // The stop hands the claim back while this attempt is on its way to the create; another runner claims it.
        await store.release(claim!, clock.now());
        await store.claimDue('acme', { now: clock.now(), limit: 1, leaseMs: 30_000, owner: 'other' });
        await opts.onCreateIntent?.();
        created = true;
        return { action: 'created', leadId: 'L1', payloadHash: 'h', payload: {}, calls: [], warnings: [] } as unknown as Awaited<ReturnType<SyncEngineLike['sync']>>;
      },
    };
    const result = await runAttempt(claim!, tenant, { store, engine, clock, retry: { baseMs: 100, maxMs: 100, budgetMs: 1000 } });
    expect(created).toBe(false);
    expect(result.record.error).toMatchObject({ code: 'ERR_LEASE_LOST' });
    expect(result.deadLetter).toBeUndefined();
    expect(result.retry).toBeUndefined();
    expect(await store.counts(clock.now())).toMatchObject({ inFlight: 1, deadLetters: 0 }); // the other runner's claim
  });
});

describe('the hold on a person\'s identities', () => {
  /** A mapping with a fetch (so a contact without a lead id holds its phone and email), timeout 1 s: holds of 3 s. */
  const fetching = { name: 'acme', mapping: { name: 'm', definition: { timeoutMs: 1000 }, endpoints: { fetch: {}, create: {} }, flow: { requires: ['fetch', 'create'] } } } as unknown as TenantSettings;

  it('is renewed while a slow sync runs, and freed when it ends', async () => {
    const clock = new ManualClock(T0);
    await store.accept([{ contact: contact(), window: WINDOW }], T0);
    const [claim] = await store.claimDue('acme', { now: T0 + 50, limit: 1, leaseMs: 30_000, owner: 'runner' });
    let finish!: () => void;
    const engine: SyncEngineLike = {
      renderPayload: async () => ({ payload: { phone: '+919876543210' }, hash: 'h' }),
      readLead: async () => { throw new Error('not used'); },
      sync: () => new Promise((resolve) => {
        finish = () => resolve({ action: 'created', leadId: 'L1', payloadHash: 'h', payload: {}, calls: [], warnings: [] } as unknown as Awaited<ReturnType<SyncEngineLike['sync']>>);
      }),
    };
    const attempt = runAttempt(claim!, fetching, { store, engine, clock, retry: { baseMs: 100, maxMs: 100, budgetMs: 1000 } });
    const someoneElse = () => store.holdIdentities('acme', ['phone:+919876543210'], 'other', clock.now() + 1000, clock.now());
    await clock.advance(0);
    // A sync held up for 10 s (three times the hold): the phone stays held all along.
    for (let t = 0; t < 10; t++) {
      await clock.advance(1000);
      expect([t, await someoneElse()]).toEqual([t, false]);
    }
    finish();
    await attempt;
    expect(await someoneElse()).toBe(true);
  });
});
