import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { PermanentError, type SyncOptions } from '@crm-sync/core';
import type { TenantSettings } from '../api';
import { ManualClock } from '../clock';
import { IDENTITY_MAX_RETRY_MS, IDENTITY_RETRY_MS, IdentityWaits, runAttempt, type AttemptOutcome, type SyncEngineLike } from '../dispatch/attempt';
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
    const result = await runAttempt(claim!, tenant, { store, engine, clock, retry: { baseMs: 100, maxMs: 100, budgetMs: 1000 } }) as AttemptOutcome;
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

  it('held by another sync: the attempt sends nothing and is deferred, later each time, and the contact is due again then', async () => {
    const clock = new ManualClock(T0 + 50);
    await store.accept([{ contact: contact({ email: 'Priya@Example.com' }), window: WINDOW }], T0);
    let synced = 0;
    const engine: SyncEngineLike = {
      renderPayload: async () => ({ payload: { phone: '+919876543210' }, hash: 'h' }),
      readLead: async () => { throw new Error('not used'); },
      sync: async () => {
        synced++;
        return { action: 'created', leadId: 'L1', payloadHash: 'h', payload: {}, calls: [], warnings: [] } as unknown as Awaited<ReturnType<SyncEngineLike['sync']>>;
      },
    };
    const identityWaits = new IdentityWaits();
    const deps = { store, engine, clock, retry: { baseMs: 100, maxMs: 100, budgetMs: 1000 }, identityWaits };
    // The other contact of this person (another contact id) is between its fetch and its create.
    expect(await store.holdIdentities('acme', ['email:priya@example.com'], 'other', T0 + 60_000, T0)).toBe(true);
    const delays: number[] = [];
    for (let i = 0; i < 6; i++) {
      const [claim] = await store.claimDue('acme', { now: clock.now(), limit: 1, leaseMs: 30_000, owner: 'runner' });
      expect(claim!.contactId).toBe('c1');
      const result = await runAttempt(claim!, fetching, deps);
      expect(result).toEqual({ deferred: { delayMs: expect.any(Number) }, durationMs: 0 });
      if (!('deferred' in result)) throw new Error('not deferred');
      delays.push(result.deferred.delayMs);
      // Handed back unmarked, nothing in its history, its slot free; due again once its delay has passed.
      expect(await store.contactStatus('acme', 'c1', clock.now())).toMatchObject({ state: 'pending', attempts: 0, dueAt: new Date(clock.now() + result.deferred.delayMs).toISOString() });
      expect(await store.claimDue('acme', { now: clock.now() + result.deferred.delayMs - 1, limit: 1, leaseMs: 30_000, owner: 'runner' })).toEqual([]);
      await clock.advance(result.deferred.delayMs);
    }
    expect(delays).toEqual([1, 2, 4, 8, 16, 32].map((n) => Math.min(n * IDENTITY_RETRY_MS, IDENTITY_MAX_RETRY_MS)));
    expect(delays.slice(0, 3)).toEqual([IDENTITY_RETRY_MS, 2 * IDENTITY_RETRY_MS, 4 * IDENTITY_RETRY_MS]);
    expect(delays.at(-1)).toBe(IDENTITY_MAX_RETRY_MS);
    expect(synced).toBe(0);
    // Another person's contact syncs meanwhile; this one, still held, is deferred again (by the longest delay).
    await store.accept([{ contact: contact({ contactId: 'c2', phone: '+919812345678' }), window: WINDOW }], clock.now() - WINDOW.quietMs);
    const claims = await store.claimDue('acme', { now: clock.now(), limit: 2, leaseMs: 30_000, owner: 'runner' });
    expect(claims.map((c) => c.contactId).sort()).toEqual(['c1', 'c2']);
    expect(await runAttempt(claims.find((c) => c.contactId === 'c2')!, fetching, deps)).toMatchObject({ record: { outcome: 'created' } });
    expect(await runAttempt(claims.find((c) => c.contactId === 'c1')!, fetching, deps)).toEqual({ deferred: { delayMs: IDENTITY_MAX_RETRY_MS }, durationMs: 0 });
    await clock.advance(IDENTITY_MAX_RETRY_MS);
    // The other sync ends: c1 gets the hold and syncs, and its next wait would start from the first delay again.
    await store.releaseIdentities('acme', ['email:priya@example.com'], 'other');
    const [claim] = await store.claimDue('acme', { now: clock.now(), limit: 1, leaseMs: 30_000, owner: 'runner' });
    expect(await runAttempt(claim!, fetching, deps)).toMatchObject({ record: { outcome: 'created' } });
    expect(synced).toBe(2);
    expect(identityWaits.next('c1')).toBe(IDENTITY_RETRY_MS);
  });
});

describe('a lease that ended without an outcome', () => {
  it('the lost write\'s payload is recorded before anything else, so a failing render of the contact now does not lose it', async () => {
    const clock = new ManualClock(T0 + 50);
    await store.accept([{ contact: contact({ name: 'v1' }), window: WINDOW }], T0);
    await store.claimDue('acme', { now: T0 + 50, limit: 1, leaseMs: 1000, owner: 'dead' });
    await store.accept([{ contact: contact({ name: 'bad' }), window: WINDOW }], T0 + 60);
    await clock.advance(1000); // the dead runner's lease lapses: it was syncing v1
    const [claim] = await store.claimDue('acme', { now: clock.now(), limit: 1, leaseMs: 30_000, owner: 'runner' });
    expect(claim!.lostWriteContact?.name).toBe('v1');
    const engine: SyncEngineLike = {
      renderPayload: async (_mapping, c) => {
        if (c.name === 'bad') throw new PermanentError('ERR_PAYLOAD_INVALID', 'the payload does not render');
        return { payload: { name: c.name, custom_fields: { utm: 'diwali' } }, hash: 'h' };
      },
      readLead: async () => { throw new Error('not used'); },
      sync: async () => { throw new Error('not reached'); },
    };
    const result = await runAttempt(claim!, tenant, { store, engine, clock, retry: { baseMs: 100, maxMs: 100, budgetMs: 1000 } }) as AttemptOutcome;
    expect(result.deadLetter).toBe('permanent');
    // Fixed by a new change: its next claim still counts what v1's write may have set.
    await store.accept([{ contact: contact({ name: 'good' }), window: WINDOW }], clock.now());
    const [next] = await store.claimDue('acme', { now: clock.now() + 50, limit: 1, leaseMs: 30_000, owner: 'runner' });
    expect(next!.unconfirmedPayload).toEqual({ name: 'v1', custom_fields: { utm: 'diwali' } });
  });
});

