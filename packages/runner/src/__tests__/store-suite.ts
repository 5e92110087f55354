/**
 * The behaviour every Store backend must have (SQLite now, Redis later): a backend's test file is
 * `describeStore('name', () => open a fresh store)`. Times are explicit numbers; no wall clock, no sleeps.
 */
import type { Contact } from '@crm-sync/core';
import type { AttemptRecord } from '../api';
import { HISTORY_LENGTH, type Claim, type Store } from '../store/types';

const T0 = Date.parse('2024-05-06T09:00:00.000Z');
const WINDOW = { quietMs: 50, maxWaitMs: 200 };
const OWNER = 'suite';
const LEASE = 1000;

export function contact(over: Partial<Contact> = {}): Contact {
  return { tenant: 'acme', contactId: 'c1', phone: '+919876543210', name: 'Priya Sharma', tags: [], attributes: {}, ...over };
}

function attempt(outcome: AttemptRecord['outcome'], at = T0): AttemptRecord {
  return { at: new Date(at).toISOString(), outcome, calls: [] };
}

const failure = (retryable: boolean, at = T0) => ({ ...attempt('failed', at), error: { code: retryable ? 'ERR_CRM_UNAVAILABLE' : 'ERR_CRM_REJECTED', message: 'the CRM answered 503', retryable, status: retryable ? 503 : 400 } });

export function describeStore(name: string, open: () => Promise<Store>): void {
  describe(`Store behaviour: ${name}`, () => {
    let store: Store;
    beforeEach(async () => { store = await open(); });
    afterEach(async () => { await store.close(); });

    const claimOne = async (now: number, tenant = 'acme', owner = OWNER): Promise<Claim> => {
      const claims = await store.claimDue(tenant, { now, limit: 10, leaseMs: LEASE, owner });
      expect(claims).toHaveLength(1);
      return claims[0];
    };
    const claimNone = async (now: number) => expect(await store.claimDue('acme', { now, limit: 10, leaseMs: LEASE, owner: OWNER })).toEqual([]);

    it('a new contact is pending, due one quiet window after its change', async () => {
      expect(await store.accept([{ contact: contact(), window: WINDOW }], T0)).toEqual(['accepted']);
      expect(await store.nextDueAt('acme')).toBe(T0 + 50);
      expect(await store.nextDueAt('other')).toBeUndefined();
      expect(await store.counts(T0)).toEqual({ pending: 1, inFlight: 0, retrying: 0, deadLetters: 0, leads: 0 });
      expect(await store.contactStatus('acme', 'c1', T0)).toMatchObject({ state: 'pending', dueAt: new Date(T0 + 50).toISOString(), attempts: 0, history: [] });
      expect(await store.contactStatus('acme', 'nobody', T0)).toBeUndefined();
    });

    it('a burst re-arms the quiet window; the claim carries the latest state', async () => {
      await store.accept([{ contact: contact({ name: 'A' }), window: WINDOW }], T0);
      await store.accept([{ contact: contact({ name: 'B' }), window: WINDOW }], T0 + 30);
      await store.accept([{ contact: contact({ name: 'C' }), window: WINDOW }], T0 + 60);
      expect(await store.nextDueAt('acme')).toBe(T0 + 110);
      await claimNone(T0 + 109);
      const claim = await claimOne(T0 + 110);
      expect(claim.contact.name).toBe('C');
      expect(claim).toMatchObject({ tenant: 'acme', contactId: 'c1', failures: 0 });
      expect(claim.leadId).toBeUndefined();
    });

    it('max wait bounds a contact that never goes quiet', async () => {
      for (let t = 0; t <= 240; t += 40) await store.accept([{ contact: contact({ name: `n${t}` }), window: WINDOW }], T0 + t);
      // Changes every 40 ms never leave 50 ms of quiet; the first change was at T0, so it is due at T0 + 200.
      expect(await store.nextDueAt('acme')).toBe(T0 + 200);
    });

    it('a redelivered eventId changes nothing, also within one batch', async () => {
      const out = await store.accept([
        { contact: contact({ eventId: 'e1', name: 'First' }), window: WINDOW },
        { contact: contact({ eventId: 'e1', name: 'Redelivered' }), window: WINDOW },
      ], T0);
      expect(out).toEqual(['accepted', 'duplicate']);
      expect(await store.accept([{ contact: contact({ eventId: 'e1', name: 'Again' }), window: WINDOW }], T0 + 40)).toEqual(['duplicate']);
      expect(await store.nextDueAt('acme')).toBe(T0 + 50);
      expect((await claimOne(T0 + 50)).contact.name).toBe('First');
    });

    it('eventIds are per tenant, and forgotten after pruning', async () => {
      const out = await store.accept([
        { contact: contact({ eventId: 'e1' }), window: WINDOW },
        { contact: contact({ tenant: 'globex', eventId: 'e1' }), window: WINDOW },
      ], T0);
      expect(out).toEqual(['accepted', 'accepted']);
      expect(await store.pruneEvents(T0 + 1)).toBe(2);
      expect(await store.accept([{ contact: contact({ eventId: 'e1' }), window: WINDOW }], T0 + 10)).toEqual(['accepted']);
    });

    it('a probe writes and changes nothing the runner reads', async () => {
      await store.accept([{ contact: contact(), window: WINDOW }], T0);
      const before = { counts: await store.counts(T0), due: await store.nextDueAt('acme'), status: await store.contactStatus('acme', 'c1', T0) };
      await store.probe(T0 + 1);
      await store.probe(T0 + 2);
      expect({ counts: await store.counts(T0), due: await store.nextDueAt('acme'), status: await store.contactStatus('acme', 'c1', T0) }).toEqual(before);
      expect(await store.deadLetters()).toEqual([]);
    });

    it('an event older than the newest accepted for its contact changes nothing; equal or newer ones are accepted', async () => {
      await store.accept([{ contact: contact({ name: 'New', ts: '2024-05-06T09:00:05.000Z' }), window: WINDOW }], T0);
      expect(await store.accept([{ contact: contact({ name: 'Old', ts: '2024-05-06T09:00:01.000Z' }), window: WINDOW }], T0 + 40)).toEqual(['stale']);
      expect(await store.accept([{ contact: contact({ name: 'NoTs' }), window: WINDOW }], T0 + 41)).toEqual(['accepted']);
      expect(await store.accept([{ contact: contact({ name: 'Old2', ts: '2024-05-06T09:00:02.000Z' }), window: WINDOW }], T0 + 42)).toEqual(['stale']);
      expect(await store.accept([{ contact: contact({ name: 'Same', ts: '2024-05-06T09:00:05.000Z' }), window: WINDOW }], T0 + 43)).toEqual(['accepted']);
      // The stale events did not re-arm the window: due 50 ms after the last accepted change.
      expect(await store.nextDueAt('acme')).toBe(T0 + 93);
      expect((await claimOne(T0 + 93)).contact.name).toBe('Same');
    });

    it('one claim per contact: a leased contact is not claimed again until its lease lapses (a dead runner)', async () => {
      await store.accept([{ contact: contact(), window: WINDOW }], T0);
      await claimOne(T0 + 50);
      await claimNone(T0 + 60);
      expect(await store.counts(T0 + 60)).toMatchObject({ pending: 0, inFlight: 1 });
      expect(await store.contactStatus('acme', 'c1', T0 + 60)).toMatchObject({ state: 'in-flight' });
      expect(await store.nextDueAt('acme')).toBe(T0 + 50 + LEASE);
      const again = await claimOne(T0 + 50 + LEASE);
      expect(again.contact.contactId).toBe('c1');
    });

    it('claims respect the limit, earliest due first, and only the asked tenant', async () => {
      await store.accept([
        { contact: contact({ contactId: 'late' }), window: WINDOW },
        { contact: contact({ tenant: 'globex', contactId: 'g' }), window: WINDOW },
      ], T0 + 10);
      await store.accept([{ contact: contact({ contactId: 'early' }), window: WINDOW }], T0);
      const claims = await store.claimDue('acme', { now: T0 + 100, limit: 1, leaseMs: LEASE, owner: OWNER });
      expect(claims.map((c) => c.contactId)).toEqual(['early']);
      expect((await store.claimDue('acme', { now: T0 + 100, limit: 5, leaseMs: LEASE, owner: OWNER })).map((c) => c.contactId)).toEqual(['late']);
      expect(await store.counts(T0 + 100)).toMatchObject({ pending: 1, inFlight: 2 });
    });

    it('complete stores the lead, payload and history; the contact is synced and not due', async () => {
      await store.accept([{ contact: contact(), window: WINDOW }], T0);
      const claim = await claimOne(T0 + 50);
      await store.complete(claim, { outcome: 'created', leadId: 'L1', payloadHash: 'h1', payload: { name: 'Priya' }, attempt: { ...attempt('created', T0 + 60), leadId: 'L1' } }, T0 + 60);
      expect(await store.nextDueAt('acme')).toBeUndefined();
      expect(await store.counts(T0 + 60)).toEqual({ pending: 0, inFlight: 0, retrying: 0, deadLetters: 0, leads: 1 });
      expect(await store.contactStatus('acme', 'c1', T0 + 60)).toMatchObject({ state: 'synced', leadId: 'L1', payloadHash: 'h1', lastOutcome: 'created', attempts: 1, history: [{ outcome: 'created', leadId: 'L1' }] });
      // The next change carries what the lead store knows.
      await store.accept([{ contact: contact({ name: 'X' }), window: WINDOW }], T0 + 100);
      const next = await claimOne(T0 + 150);
      expect(next).toMatchObject({ leadId: 'L1', payloadHash: 'h1', lastPayload: { name: 'Priya' } });
    });

    it('a skipped sync settles the contact with no lead and no payload as the CRM\'s; its next change is claimed as new', async () => {
      await store.accept([{ contact: contact(), window: WINDOW }], T0);
      const claim = await claimOne(T0 + 50);
      await store.complete(claim, { outcome: 'skipped', payloadHash: 'h1', payload: undefined, attempt: { ...attempt('skipped', T0 + 60), reason: 'unknown to the CRM' } }, T0 + 60);
      expect(await store.nextDueAt('acme')).toBeUndefined();
      expect(await store.counts(T0 + 60)).toEqual({ pending: 0, inFlight: 0, retrying: 0, deadLetters: 0, leads: 0 });
      const status = await store.contactStatus('acme', 'c1', T0 + 60);
      expect(status).toMatchObject({ state: 'synced', lastOutcome: 'skipped', history: [{ outcome: 'skipped', reason: 'unknown to the CRM' }] });
      expect(status!.leadId).toBeUndefined();
      await store.accept([{ contact: contact({ name: 'X' }), window: WINDOW }], T0 + 100);
      const next = await claimOne(T0 + 150);
      expect(next.leadId).toBeUndefined();
      expect(next.lastPayload ?? null).toBeNull();
    });

    it('a skip keeps the lead and what the CRM was last told; one after the CRM lost the lead forgets it (and the count)', async () => {
      await store.accept([{ contact: contact(), window: WINDOW }], T0);
      await store.complete(await claimOne(T0 + 50), { outcome: 'created', leadId: 'L1', payloadHash: 'h1', payload: { name: 'Priya' }, attempt: attempt('created', T0 + 60) }, T0 + 60);
      await store.accept([{ contact: contact({ name: 'X' }), window: WINDOW }], T0 + 100);
      await store.complete(await claimOne(T0 + 150), { outcome: 'skipped', payloadHash: 'h2', payload: { name: 'X' }, attempt: attempt('skipped', T0 + 160) }, T0 + 160);
      expect(await store.contactStatus('acme', 'c1', T0 + 160)).toMatchObject({ state: 'synced', leadId: 'L1', payloadHash: 'h1', lastOutcome: 'skipped' });
      expect((await store.counts(T0 + 160)).leads).toBe(1);
      await store.accept([{ contact: contact({ name: 'Y' }), window: WINDOW }], T0 + 200);
      expect(await claimOne(T0 + 250)).toMatchObject({ leadId: 'L1', payloadHash: 'h1', lastPayload: { name: 'Priya' } });
      // The same claim, settled by a skip after the CRM no longer had L1.
      const again = (await store.contactStatus('acme', 'c1', T0 + 250))!;
      expect(again.state).toBe('in-flight');
      const claim = await store.claimDue('acme', { now: T0 + 250 + LEASE + 1, limit: 1, leaseMs: LEASE, owner: OWNER });
      await store.complete(claim[0]!, { outcome: 'skipped', payloadHash: 'h3', payload: { name: 'Y' }, attempt: attempt('skipped', T0 + LEASE + 300), forgetLeadId: true }, T0 + LEASE + 300);
      const forgot = await store.contactStatus('acme', 'c1', T0 + LEASE + 300);
      expect(forgot).toMatchObject({ state: 'synced', lastOutcome: 'skipped' });
      expect(forgot!.leadId).toBeUndefined();
      expect((await store.counts(T0 + LEASE + 300)).leads).toBe(0);
    });

    it('a change during the sync makes the contact pending again after it, with that change\'s window', async () => {
      await store.accept([{ contact: contact({ name: 'A' }), window: WINDOW }], T0);
      const claim = await claimOne(T0 + 50);
      await store.accept([{ contact: contact({ name: 'B' }), window: WINDOW }], T0 + 55);
      await claimNone(T0 + 105); // still leased: one in flight per contact
      await store.complete(claim, { outcome: 'created', leadId: 'L1', payloadHash: 'h', payload: {}, attempt: attempt('created') }, T0 + 70);
      expect(await store.nextDueAt('acme')).toBe(T0 + 105);
      expect(await store.counts(T0 + 70)).toMatchObject({ pending: 1, inFlight: 0 });
      const next = await claimOne(T0 + 105);
      expect(next).toMatchObject({ leadId: 'L1' });
      expect(next.contact.name).toBe('B');
      // A window that already passed while the sync ran is due at completion, not in the past.
      await store.accept([{ contact: contact({ name: 'C' }), window: WINDOW }], T0 + 110);
      await store.complete(next, { outcome: 'updated', leadId: 'L1', payloadHash: 'h2', payload: {}, attempt: attempt('updated') }, T0 + 400);
      expect(await store.nextDueAt('acme')).toBe(T0 + 400);
    });

    it('a retryable failure schedules a retry; the next claim knows the failures', async () => {
      await store.accept([{ contact: contact(), window: WINDOW }], T0);
      const claim = await claimOne(T0 + 50);
      await store.fail(claim, { attempt: failure(true), retryAt: T0 + 500 }, T0 + 60);
      expect(await store.counts(T0 + 60)).toMatchObject({ pending: 0, retrying: 1, inFlight: 0 });
      expect(await store.contactStatus('acme', 'c1', T0 + 60)).toMatchObject({ state: 'retrying', dueAt: new Date(T0 + 500).toISOString(), lastOutcome: 'failed' });
      await claimNone(T0 + 499);
      const retry = await claimOne(T0 + 500);
      expect(retry).toMatchObject({ failures: 1, failingSince: T0 + 60 });
      await store.fail(retry, { attempt: failure(true), retryAt: T0 + 900 }, T0 + 510);
      const third = await claimOne(T0 + 900);
      expect(third).toMatchObject({ failures: 2, failingSince: T0 + 60 });
      await store.complete(third, { outcome: 'created', leadId: 'L1', payloadHash: 'h', payload: {}, attempt: attempt('created') }, T0 + 910);
      expect(await store.counts(T0 + 910)).toMatchObject({ retrying: 0, leads: 1 });
    });

    it('a change while retrying keeps the backoff', async () => {
      await store.accept([{ contact: contact(), window: WINDOW }], T0);
      await store.fail(await claimOne(T0 + 50), { attempt: failure(true), retryAt: T0 + 500 }, T0 + 60);
      await store.accept([{ contact: contact({ name: 'B' }), window: WINDOW }], T0 + 100);
      expect(await store.nextDueAt('acme')).toBe(T0 + 500);
      expect(await store.counts(T0 + 100)).toMatchObject({ retrying: 1, pending: 0 });
    });

    it('dead letters: listed with their reason, replayed, and a new change also tries again', async () => {
      await store.accept([{ contact: contact(), window: WINDOW }, { contact: contact({ contactId: 'c2' }), window: WINDOW }], T0);
      const claims = await store.claimDue('acme', { now: T0 + 50, limit: 10, leaseMs: LEASE, owner: OWNER });
      for (const c of claims) await store.fail(c, { attempt: failure(false), deadCause: 'permanent' }, T0 + 60);
      expect(await store.counts(T0 + 60)).toMatchObject({ deadLetters: 2, pending: 0, inFlight: 0 });
      const dead = await store.deadLetters('acme');
      expect(dead).toEqual([
        expect.objectContaining({ tenant: 'acme', contactId: 'c1', at: new Date(T0 + 60).toISOString(), attempts: 1, cause: 'permanent', error: expect.objectContaining({ code: 'ERR_CRM_REJECTED', status: 400 }) }),
        expect.objectContaining({ contactId: 'c2' }),
      ]);
      expect(await store.deadLetters('globex')).toEqual([]);
      expect(await store.deadLetters()).toHaveLength(2);
      expect(await store.contactStatus('acme', 'c1', T0 + 60)).toMatchObject({ state: 'dead-letter' });
      expect(await store.nextDueAt('acme')).toBeUndefined();

      expect(await store.replay('acme', 'c1', T0 + 70)).toBe(1);
      expect(await store.replay('acme', 'c1', T0 + 70)).toBe(0);
      expect((await claimOne(T0 + 70)).failures).toBe(0);

      await store.accept([{ contact: contact({ contactId: 'c2', name: 'fixed' }), window: WINDOW }], T0 + 80);
      expect(await store.counts(T0 + 80)).toMatchObject({ deadLetters: 0, pending: 1 });
      expect((await claimOne(T0 + 130)).contact.name).toBe('fixed');
    });

    it('replay all replays only that tenant\'s dead letters', async () => {
      await store.accept([{ contact: contact() }, { contact: contact({ contactId: 'c2' }) }, { contact: contact({ tenant: 'globex' }) }].map((i) => ({ ...i, window: WINDOW })), T0);
      for (const t of ['acme', 'globex']) {
        for (const c of await store.claimDue(t, { now: T0 + 50, limit: 10, leaseMs: LEASE, owner: OWNER })) await store.fail(c, { attempt: failure(false) }, T0 + 60);
      }
      expect(await store.replay('acme', 'all', T0 + 70)).toBe(2);
      expect(await store.counts(T0 + 70)).toMatchObject({ deadLetters: 1, pending: 2 });
    });

    describe('resync', () => {
      const done = (outcome: 'created' | 'updated', at: number) => ({ outcome, leadId: 'L1', payloadHash: 'h1', payload: { name: 'Priya' }, attempt: attempt(outcome, at) });
      /** Accepts the contacts and syncs them all (status synced, lead L1, hash h1) by T0 + 60. */
      const synced = async (ids: string[]) => {
        await store.accept(ids.map((id) => ({ contact: contact({ contactId: id }), window: WINDOW })), T0);
        for (const c of await store.claimDue('acme', { now: T0 + 50, limit: ids.length, leaseMs: LEASE, owner: OWNER })) await store.complete(c, done('created', T0 + 60), T0 + 60);
      };

      it('a synced contact becomes pending with the mark; the sync claimed after it clears it', async () => {
        await synced(['c1']);
        expect(await store.counts(T0 + 60)).toMatchObject({ pending: 0, inFlight: 0 });
        expect(await store.resync('acme', ['c1', 'nobody'], { now: T0 + 100, intervalMs: 0 })).toBe(1);
        expect(await store.counts(T0 + 100)).toMatchObject({ pending: 1 });
        expect(await store.contactStatus('acme', 'c1', T0 + 100)).toMatchObject({ state: 'pending', dueAt: new Date(T0 + 100).toISOString(), resyncAt: new Date(T0 + 100).toISOString(), payloadHash: 'h1', leadId: 'L1' });
        const claim = await claimOne(T0 + 100);
        expect(claim).toMatchObject({ resyncAt: T0 + 100, payloadHash: 'h1', leadId: 'L1' });
        await store.complete(claim, done('updated', T0 + 110), T0 + 110);
        const after = await store.contactStatus('acme', 'c1', T0 + 110);
        expect(after).toMatchObject({ state: 'synced' });
        expect(after?.resyncAt).toBeUndefined();
        await claimNone(T0 + 10_000);
      });

      it('a failed attempt keeps the mark for the retry', async () => {
        await synced(['c1']);
        await store.resync('acme', ['c1'], { now: T0 + 100, intervalMs: 0 });
        await store.fail(await claimOne(T0 + 100), { attempt: failure(true, T0 + 110), retryAt: T0 + 500 }, T0 + 110);
        expect((await claimOne(T0 + 500)).resyncAt).toBe(T0 + 100);
      });

      it('synced contacts are spread out; pending ones keep their schedule; dead letters are left to replay', async () => {
        await synced(['c1', 'c2', 'c3']);
        await store.accept([{ contact: contact({ contactId: 'd1' }), window: WINDOW }], T0 + 100);
        await store.fail(await claimOne(T0 + 150), { attempt: failure(false) }, T0 + 160);
        await store.accept([{ contact: contact({ contactId: 'p1' }), window: WINDOW }], T0 + 200);
        await store.accept([{ contact: contact({ tenant: 'globex' }), window: WINDOW }], T0 + 200);

        expect(await store.resync('acme', 'all', { now: T0 + 1000, intervalMs: 100 })).toBe(4);
        expect(await store.counts(T0 + 1000)).toMatchObject({ deadLetters: 1, pending: 5 });
        const status = (id: string, tenant = 'acme') => store.contactStatus(tenant, id, T0 + 1000);
        // In the order the backend goes through them (by id here, SCAN's order on Redis): one every 100 ms.
        expect((await Promise.all(['c1', 'c2', 'c3'].map(async (id) => (await status(id))?.dueAt))).sort())
          .toEqual([T0 + 1000, T0 + 1100, T0 + 1200].map((t) => new Date(t).toISOString()));
        expect(await status('p1')).toMatchObject({ state: 'pending', dueAt: new Date(T0 + 250).toISOString(), resyncAt: new Date(T0 + 1000).toISOString() });
        expect(await status('d1')).toMatchObject({ state: 'dead-letter' });
        expect((await status('d1'))?.resyncAt).toBeUndefined();
        expect((await status('c1', 'globex'))?.resyncAt).toBeUndefined();
        const claims = await store.claimDue('acme', { now: T0 + 1100, limit: 10, leaseMs: LEASE, owner: OWNER });
        expect(claims.map((c) => c.contactId)).toEqual(['p1', expect.stringMatching(/^c/), expect.stringMatching(/^c/)]);
        expect(claims.every((c) => c.resyncAt === T0 + 1000)).toBe(true);
      });

      it('a contact in flight is synced once more after its attempt, with the mark', async () => {
        await synced(['c1']);
        await store.accept([{ contact: contact({ name: 'B' }), window: WINDOW }], T0 + 100);
        const before = await claimOne(T0 + 150);
        expect(before.resyncAt).toBeUndefined();
        expect(await store.resync('acme', ['c1'], { now: T0 + 160, intervalMs: 0 })).toBe(1);
        // The attempt claimed before the resync succeeds: it does not clear a mark set after its claim.
        await store.complete(before, done('updated', T0 + 170), T0 + 170);
        expect(await store.contactStatus('acme', 'c1', T0 + 170)).toMatchObject({ state: 'pending', dueAt: new Date(T0 + 170).toISOString(), resyncAt: new Date(T0 + 160).toISOString() });
        const again = await claimOne(T0 + 170);
        expect(again.resyncAt).toBe(T0 + 160);
        await store.complete(again, done('updated', T0 + 180), T0 + 180);
        expect((await store.contactStatus('acme', 'c1', T0 + 180))?.resyncAt).toBeUndefined();
      });

      it('all goes through every contact of the tenant, page after page', async () => {
        const ids = Array.from({ length: 1234 }, (_, i) => `p${i}`);
        await store.accept(ids.map((id) => ({ contact: contact({ contactId: id }), window: WINDOW })), T0);
        expect(await store.resync('acme', 'all', { now: T0 + 10, intervalMs: 0 })).toBe(1234);
        const claims = await store.claimDue('acme', { now: T0 + 50, limit: 2000, leaseMs: LEASE, owner: OWNER });
        expect(claims).toHaveLength(1234);
        expect(claims.every((c) => c.resyncAt === T0 + 10)).toBe(true);
      });
    });

    it('a job lease is held by one owner until it lapses, extended by its holder, and freed only by it', async () => {
      expect(await store.holdJob('reconcile:acme', 'a', T0 + 100, T0)).toBe(true);
      expect(await store.holdJob('reconcile:acme', 'b', T0 + 200, T0 + 50)).toBe(false);
      expect(await store.holdJob('reconcile:acme', 'a', T0 + 300, T0 + 50)).toBe(true); // extended
      expect(await store.holdJob('reconcile:acme', 'b', T0 + 400, T0 + 299)).toBe(false);
      expect(await store.holdJob('reconcile:globex', 'b', T0 + 400, T0 + 299)).toBe(true); // another job
      expect(await store.holdJob('reconcile:acme', 'b', T0 + 400, T0 + 300)).toBe(true); // lapsed: taken over
      await store.releaseJob('reconcile:acme', 'a'); // not a's any more: nothing
      expect(await store.holdJob('reconcile:acme', 'a', T0 + 500, T0 + 301)).toBe(false);
      await store.releaseJob('reconcile:acme', 'b');
      expect(await store.holdJob('reconcile:acme', 'a', T0 + 500, T0 + 302)).toBe(true);
    });

    it('identity holds: all the keys or none, one owner until they expire, extended by it, freed only by it', async () => {
      const phone = 'phone:+919876543210';
      const email = 'email:priya@example.com';
      expect(await store.holdIdentities('acme', [phone, email], 'a', T0 + 100, T0)).toBe(true);
      // b wants the email and another phone: nothing is taken, as the email is a's.
      expect(await store.holdIdentities('acme', ['phone:+15550100', email], 'b', T0 + 200, T0 + 50)).toBe(false);
      expect(await store.holdIdentities('acme', ['phone:+15550100'], 'c', T0 + 200, T0 + 50)).toBe(true);
      expect(await store.holdIdentities('globex', [phone], 'b', T0 + 200, T0 + 50)).toBe(true); // another tenant
      expect(await store.holdIdentities('acme', [phone, email], 'a', T0 + 300, T0 + 60)).toBe(true); // extended
      expect(await store.holdIdentities('acme', [phone], 'b', T0 + 400, T0 + 299)).toBe(false);
      await store.releaseIdentities('acme', [phone, email], 'b'); // not b's: nothing
      expect(await store.holdIdentities('acme', [email], 'b', T0 + 400, T0 + 299)).toBe(false);
      await store.releaseIdentities('acme', [phone, email], 'a');
      expect(await store.holdIdentities('acme', [phone, email], 'b', T0 + 400, T0 + 299)).toBe(true);
      expect(await store.holdIdentities('acme', [phone], 'a', T0 + 500, T0 + 400)).toBe(true); // b's expired: taken over
    });

    describe('syncedLeads', () => {
      /** Every page until the end: the contact ids listed (once each), and how many pages it took. */
      const listAll = async (tenant: string, limit: number) => {
        const seen = new Map<string, unknown>();
        let cursor: string | undefined;
        let pages = 0;
        do {
          const page = await store.syncedLeads(tenant, { cursor, limit });
          for (const lead of page.leads) seen.set(lead.contactId, lead);
          cursor = page.cursor;
          pages++;
        } while (cursor !== undefined && pages < 10_000);
        return { seen, pages };
      };

      it('lists the synced contacts with their lead and last payload, page by page, and nothing else', async () => {
        const ids = Array.from({ length: 30 }, (_, i) => `s${i}`);
        await store.accept([...ids, 'changed', 'dead'].map((id) => ({ contact: contact({ contactId: id, name: `N ${id}` }), window: WINDOW })), T0);
        for (const c of await store.claimDue('acme', { now: T0 + 50, limit: 100, leaseMs: LEASE, owner: OWNER })) {
          if (c.contactId === 'dead') await store.fail(c, { attempt: failure(false, T0 + 60) }, T0 + 60);
          else await store.complete(c, { outcome: 'created', leadId: `L-${c.contactId}`, payloadHash: `h-${c.contactId}`, payload: { name: c.contact.name }, attempt: attempt('created', T0 + 60) }, T0 + 60);
        }
        await store.accept([{ contact: contact({ contactId: 'changed', name: 'Newer' }), window: WINDOW }], T0 + 100);
        await store.accept([{ contact: contact({ contactId: 'new' }), window: WINDOW }], T0 + 100);
        await store.accept([{ contact: contact({ tenant: 'globex', contactId: 's1' }), window: WINDOW }], T0 + 100);

        const { seen, pages } = await listAll('acme', 7);
        expect([...seen.keys()].sort()).toEqual([...ids].sort());
        expect(pages).toBeGreaterThan(1);
        expect(seen.get('s3')).toEqual({ contactId: 's3', contact: contact({ contactId: 's3', name: 'N s3' }), leadId: 'L-s3', payloadHash: 'h-s3', payload: { name: 'N s3' } });
        expect(await store.syncedLead('acme', 's3')).toEqual(seen.get('s3'));
        for (const id of ['changed', 'dead', 'new', 'nobody']) expect(await store.syncedLead('acme', id)).toBeUndefined();
        expect((await listAll('globex', 7)).seen.size).toBe(0);
        expect((await listAll('initech', 7)).seen.size).toBe(0);
      });
    });

    it('a failure with a change that arrived during the attempt is pending, not dead', async () => {
      await store.accept([{ contact: contact() }].map((i) => ({ ...i, window: WINDOW })), T0);
      const claim = await claimOne(T0 + 50);
      await store.accept([{ contact: contact({ name: 'fixed' }), window: WINDOW }], T0 + 55);
      await store.fail(claim, { attempt: failure(false) }, T0 + 60);
      expect(await store.counts(T0 + 60)).toMatchObject({ deadLetters: 0, pending: 1 });
      expect(await store.nextDueAt('acme')).toBe(T0 + 105);
    });

    it('the create intent survives a failure and is passed on, then cleared once a lead id is stored', async () => {
      await store.accept([{ contact: contact(), window: WINDOW }], T0);
      const claim = await claimOne(T0 + 50);
      await store.markCreateIntent(claim, T0 + 55);
      await store.fail(claim, { attempt: failure(true), retryAt: T0 + 100 }, T0 + 60);
      const retry = await claimOne(T0 + 100);
      expect(retry.unconfirmedCreateAt).toBe(T0 + 55);
      await store.complete(retry, { outcome: 'updated', leadId: 'L1', payloadHash: 'h', payload: {}, attempt: attempt('updated') }, T0 + 110);
      await store.accept([{ contact: contact({ name: 'B' }), window: WINDOW }], T0 + 120);
      expect((await claimOne(T0 + 170)).unconfirmedCreateAt).toBeUndefined();
    });

    it('a create intent outlives a dead runner\'s lease', async () => {
      await store.accept([{ contact: contact(), window: WINDOW }], T0);
      await store.markCreateIntent(await claimOne(T0 + 50), T0 + 55);
      expect((await claimOne(T0 + 50 + LEASE)).unconfirmedCreateAt).toBe(T0 + 55);
    });

    it('a lapsed lease whose create has not timed out is not claimed before it has (a lease shorter than the timeout)', async () => {
      await store.accept([{ contact: contact() }].map((i) => ({ ...i, window: WINDOW })), T0);
      const [a] = await store.claimDue('acme', { now: T0 + 50, limit: 1, leaseMs: LEASE, owner: 'dead' });
      await store.markCreateIntent(a!, T0 + 55);
      // The lease lapses at T0 + 1050; the create (sent at T0 + 55, timeout 3000) may land until T0 + 3055.
      const claim = (now: number) => store.claimDue('acme', { now, limit: 10, leaseMs: LEASE, owner: OWNER, createTimeoutMs: 3000 });
      expect(await claim(T0 + 1100)).toEqual([]);
      expect(await store.counts(T0 + 1100)).toMatchObject({ pending: 1, inFlight: 0 });
      expect(await store.nextDueAt('acme')).toBe(T0 + 3055);
      expect(await claim(T0 + 3054)).toEqual([]);
      expect(await claim(T0 + 3055)).toEqual([expect.objectContaining({ contactId: 'c1', unconfirmedCreateAt: T0 + 55, unconfirmedWriteAt: T0 + 1100 })]);
    });

    it('a contact with an unconfirmed create is not claimed before it has timed out, whatever made it due meanwhile', async () => {
      const claimAt = (now: number) => store.claimDue('acme', { now, limit: 10, leaseMs: LEASE, owner: OWNER, createTimeoutMs: 3000 });
      await store.accept([{ contact: contact() }, { contact: contact({ contactId: 'c2' }) }, { contact: contact({ contactId: 'c3' }) }].map((i) => ({ ...i, window: WINDOW })), T0);
      const [c1, c2, c3] = await store.claimDue('acme', { now: T0 + 50, limit: 3, leaseMs: LEASE, owner: 'dead' });
      for (const c of [c1!, c2!, c3!]) expect(await store.markCreateIntent(c, T0 + 55)).toBe(true);
      // c1: handed back, then a new change (its window ends at T0 + 160); c2: its create failed, retry at T0 + 100;
      // c3: its dead owner's leases released at T0 + 60.
      await store.release(c1!, T0 + 60);
      await store.accept([{ contact: contact({ name: 'changed' }), window: WINDOW }], T0 + 110);
      await store.fail(c2!, { attempt: failure(true), retryAt: T0 + 100, unconfirmedWrite: true }, T0 + 60);
      await store.releaseOwners('acme', ['dead'], { now: T0 + 60, createTimeoutMs: 3000 });
      expect(await claimAt(T0 + 1100)).toEqual([]);
      expect(await store.nextDueAt('acme')).toBe(T0 + 3055);
      expect(await store.counts(T0 + 1100)).toMatchObject({ pending: 2, retrying: 1, inFlight: 0 });
      expect((await claimAt(T0 + 3055)).map((c) => c.contactId).sort()).toEqual(['c1', 'c2', 'c3']);
    });

    it('a create the CRM answered with a failure is settled: its retry is not held back', async () => {
      await store.accept([{ contact: contact() }].map((i) => ({ ...i, window: WINDOW })), T0);
      const claim = await claimOne(T0 + 50);
      await store.markCreateIntent(claim, T0 + 55);
      await store.fail(claim, { attempt: failure(true), retryAt: T0 + 100 }, T0 + 60);
      expect(await store.claimDue('acme', { now: T0 + 100, limit: 10, leaseMs: LEASE, owner: OWNER, createTimeoutMs: 3000 }))
        .toEqual([expect.objectContaining({ contactId: 'c1', unconfirmedCreateAt: T0 + 55 })]);
    });

    it('a create intent is recorded only while the claim\'s lease is held', async () => {
      await store.accept([{ contact: contact() }].map((i) => ({ ...i, window: WINDOW })), T0);
      const handedBack = await claimOne(T0 + 50);
      await store.release(handedBack, T0 + 60);
      const current = await claimOne(T0 + 60);
      expect(await store.markCreateIntent(handedBack, T0 + 70)).toBe(false);
      expect(await store.markCreateIntent(current, T0 + 71)).toBe(true);
      await store.release(current, T0 + 80);
      expect((await claimOne(T0 + 80)).unconfirmedCreateAt).toBe(T0 + 71);
    });

    it('a create intent keeps the identity and payload it sent, and a write of unknown outcome its payload, until a success confirms', async () => {
      await store.accept([{ contact: contact() }].map((i) => ({ ...i, window: WINDOW })), T0);
      const first = await claimOne(T0 + 50);
      const identity = { phone: '+919876543210', email: 'priya@example.com' };
      expect(await store.markCreateIntent(first, T0 + 55, { identity, unconfirmedPayload: { name: 'A', custom_fields: { k: 'x' } } })).toBe(true);
      await store.fail(first, { attempt: failure(true), retryAt: T0 + 100, unconfirmedWrite: true, unconfirmedPayload: { name: 'A', custom_fields: { k: 'x' } } }, T0 + 60);
      const second = await claimOne(T0 + 100);
      expect(second).toMatchObject({ unconfirmedCreateAt: T0 + 55, unconfirmedCreateIdentity: identity, unconfirmedPayload: { name: 'A', custom_fields: { k: 'x' } } });
      // An update that timed out: its payload joins (as the runner joined it); a stale claim's is not stored.
      await store.fail(second, { attempt: failure(true), retryAt: T0 + 200, unconfirmedWrite: true, unconfirmedPayload: { name: 'B', custom_fields: { k: 'x', j: 'y' } } }, T0 + 150);
      await store.fail(first, { attempt: failure(true), retryAt: T0 + 200, unconfirmedWrite: true, unconfirmedPayload: { stale: true } }, T0 + 160);
      const third = await claimOne(T0 + 200);
      expect(third.unconfirmedPayload).toEqual({ name: 'B', custom_fields: { k: 'x', j: 'y' } });
      // A success within the settle window (a recheck due) keeps them; the confirming one clears them.
      await store.complete(third, { outcome: 'updated', leadId: 'L1', payloadHash: 'h', payload: {}, attempt: attempt('updated'), recheckAt: T0 + 3000 }, T0 + 250);
      const recheck = await claimOne(T0 + 3000);
      expect(recheck).toMatchObject({ unconfirmedPayload: { name: 'B', custom_fields: { k: 'x', j: 'y' } } });
      expect(recheck.unconfirmedCreateAt).toBeUndefined();
      expect(recheck.unconfirmedCreateIdentity).toBeUndefined();
      await store.complete(recheck, { outcome: 'updated', leadId: 'L1', payloadHash: 'h', payload: {}, attempt: attempt('updated') }, T0 + 3050);
      await store.accept([{ contact: contact({ name: 'changed' }), window: WINDOW }], T0 + 3100);
      expect((await claimOne(T0 + 3150)).unconfirmedPayload).toBeUndefined();
    });

    it('a lease that ends without an outcome hands the snapshot it was syncing to the next claim, until it is recorded', async () => {
      await store.accept([{ contact: contact({ name: 'v1' }), window: WINDOW }], T0);
      const first = await claimOne(T0 + 50);
      expect(first.lostWriteContact).toBeUndefined();
      // A change while claimed keeps the claimed snapshot; the lease then lapses (kill -9): the next claim gets v1.
      await store.accept([{ contact: contact({ name: 'v2' }), window: WINDOW }], T0 + 60);
      const second = await claimOne(T0 + 50 + LEASE);
      expect([second.lostWriteContact?.name, second.contact.name]).toEqual(['v1', 'v2']);
      // Not recorded yet, then handed back: still v1 (not v2, which this claim never sent).
      await store.release(second, T0 + 1100);
      const third = await claimOne(T0 + 1100);
      expect(third.lostWriteContact?.name).toBe('v1');
      // Recorded, by the lease holder only: gone, its payload kept. Handed back after that: its own snapshot, v2.
      expect(await store.recordUnconfirmedPayload(second, { stale: true })).toBe(false);
      expect(await store.recordUnconfirmedPayload(third, { name: 'v1' })).toBe(true);
      await store.release(third, T0 + 1200);
      const fourth = await claimOne(T0 + 1200);
      expect([fourth.lostWriteContact?.name, fourth.unconfirmedPayload]).toEqual(['v2', { name: 'v1' }]);
      // Deferred (it sent nothing): no lost write, even after a change meanwhile.
      expect(await store.recordUnconfirmedPayload(fourth, { name: 'v2' })).toBe(true);
      await store.accept([{ contact: contact({ name: 'v3' }), window: WINDOW }], T0 + 1250);
      await store.release(fourth, T0 + 1300, { deferUntil: T0 + 1300 });
      const fifth = await claimOne(T0 + 1300);
      expect(fifth.lostWriteContact).toBeUndefined();
      // An outcome recorded (a failure answered by the CRM) leaves none either, after a change meanwhile.
      await store.accept([{ contact: contact({ name: 'v4' }), window: WINDOW }], T0 + 1310);
      await store.fail(fifth, { attempt: failure(true), retryAt: T0 + 1400 }, T0 + 1320);
      const sixth = await claimOne(T0 + 1400);
      expect(sixth.lostWriteContact).toBeUndefined();
      // A dead owner's leases released (no change since it claimed): the snapshot it claimed, the contact.
      await store.complete(sixth, { outcome: 'updated', leadId: 'L1', payloadHash: 'h', payload: {}, attempt: attempt('updated') }, T0 + 1450);
      await store.accept([{ contact: contact({ name: 'v5' }), window: WINDOW }], T0 + 1500);
      await store.claimDue('acme', { now: T0 + 1550, limit: 1, leaseMs: LEASE, owner: 'dead' });
      await store.releaseOwners('acme', ['dead'], { now: T0 + 1570, createTimeoutMs: 300 });
      expect((await claimOne(T0 + 1570)).lostWriteContact?.name).toBe('v5');
    });

    it('recording a lost snapshot keeps the claim\'s own in its place when the contact changed since the claim', async () => {
      await store.accept([{ contact: contact({ name: 'v1' }), window: WINDOW }], T0);
      await claimOne(T0 + 50);
      await store.accept([{ contact: contact({ name: 'v2' }), window: WINDOW }], T0 + 60);
      const second = await claimOne(T0 + 50 + LEASE); // the first lease lapsed (kill -9): it was syncing v1
      await store.accept([{ contact: contact({ name: 'v3' }), window: WINDOW }], T0 + 1100);
      expect(await store.recordUnconfirmedPayload(second, { name: 'v1' })).toBe(true);
      // The second sends v2, and is handed back unfinished: v2 is what the next claim must count as possibly written.
      await store.release(second, T0 + 1200);
      const third = await claimOne(T0 + 1200);
      expect([third.lostWriteContact?.name, third.contact.name, third.unconfirmedPayload]).toEqual(['v2', 'v3', { name: 'v1' }]);
    });

    it('a deferral keeps the contact pending since it was: a change meanwhile does not restart its maximum wait', async () => {
      await store.accept([{ contact: contact(), window: WINDOW }], T0);
      await store.accept([{ contact: contact({ name: 'B' }), window: WINDOW }], T0 + 40);
      const claim = await claimOne(T0 + 90);
      expect(claim.pendingSince).toBe(T0);
      await store.release(claim, T0 + 100, { deferUntil: T0 + 300 });
      // A change at T0 + 180: due at the end of the maximum wait that began at T0, not a quiet window later.
      await store.accept([{ contact: contact({ name: 'C' }), window: WINDOW }], T0 + 180);
      expect(await store.nextDueAt('acme')).toBe(T0 + WINDOW.maxWaitMs);
    });

    it('a lapsed lease whose create has timed out, or without one, is claimed at once', async () => {
      await store.accept([{ contact: contact() }, { contact: contact({ contactId: 'c2' }) }].map((i) => ({ ...i, window: WINDOW })), T0);
      const [a] = await store.claimDue('acme', { now: T0 + 50, limit: 2, leaseMs: LEASE, owner: 'dead' });
      await store.markCreateIntent(a!, T0 + 55);
      const taken = await store.claimDue('acme', { now: T0 + 1100, limit: 10, leaseMs: LEASE, owner: OWNER, createTimeoutMs: 500 });
      expect(taken.map((c) => c.contactId).sort()).toEqual(['c1', 'c2']);
    });

    it('release of an attempt that had sent a create: due once the create has timed out', async () => {
      await store.accept([{ contact: contact() }].map((i) => ({ ...i, window: WINDOW })), T0);
      const claim = await claimOne(T0 + 50);
      await store.markCreateIntent(claim, T0 + 55);
      await store.release(claim, T0 + 60, { createTimeoutMs: 3000 });
      expect(await store.counts(T0 + 60)).toMatchObject({ pending: 1, inFlight: 0 });
      expect(await store.nextDueAt('acme')).toBe(T0 + 3055);
      await claimNone(T0 + 3054);
      expect((await claimOne(T0 + 3055)).unconfirmedCreateAt).toBe(T0 + 55);
    });

    it('release of an attempt deferred before it sent anything: due at deferUntil, with no unconfirmed-write mark', async () => {
      await store.accept([{ contact: contact(), window: WINDOW }], T0);
      await store.release(await claimOne(T0 + 50), T0 + 60, { createTimeoutMs: 3000, deferUntil: T0 + 260 });
      expect(await store.counts(T0 + 60)).toMatchObject({ pending: 1, inFlight: 0 });
      expect(await store.nextDueAt('acme')).toBe(T0 + 260);
      await claimNone(T0 + 259);
      const again = await claimOne(T0 + 260);
      expect([again.unconfirmedWriteAt, again.unconfirmedCreateAt]).toEqual([undefined, undefined]);
    });

    it('release hands a claim back, due at once', async () => {
      await store.accept([{ contact: contact(), window: WINDOW }], T0);
      await store.release(await claimOne(T0 + 50), T0 + 60);
      expect(await store.counts(T0 + 60)).toMatchObject({ pending: 1, inFlight: 0 });
      expect(await store.nextDueAt('acme')).toBe(T0 + 60);
      await claimOne(T0 + 60);
    });

    it('a lapsed lease\'s late answer stores its lead id but leaves the new holder\'s claim alone', async () => {
      await store.accept([{ contact: contact() }].map((i) => ({ ...i, window: WINDOW })), T0);
      const stale = await claimOne(T0 + 50);
      const current = await claimOne(T0 + 50 + LEASE);
      await store.complete(stale, { outcome: 'created', leadId: 'L1', payloadHash: 'h-old', payload: {}, attempt: attempt('created') }, T0 + 1100);
      expect(await store.contactStatus('acme', 'c1', T0 + 1100)).toMatchObject({ state: 'in-flight', leadId: 'L1' });
      await store.fail(stale, { attempt: failure(false) }, T0 + 1100);
      expect(await store.counts(T0 + 1100)).toMatchObject({ inFlight: 1, deadLetters: 0, leads: 1 });
      await store.release(stale, T0 + 1100);
      await claimNone(T0 + 1100);
      // The stale create may have landed after the current holder's write began: its success is not the last word.
      await store.complete(current, { outcome: 'updated', leadId: 'L1', payloadHash: 'h', payload: {}, attempt: attempt('updated') }, T0 + 1200);
      expect(await store.contactStatus('acme', 'c1', T0 + 1200)).toMatchObject({ state: 'pending', dueAt: new Date(T0 + 1200).toISOString() });
      const again = await claimOne(T0 + 1200);
      expect(again.unconfirmedWriteAt).toBe(T0 + 1100);
      await store.complete(again, { outcome: 'updated', leadId: 'L1', payloadHash: 'h', payload: {}, attempt: attempt('updated') }, T0 + 1300);
      expect(await store.contactStatus('acme', 'c1', T0 + 1300)).toMatchObject({ state: 'synced', payloadHash: 'h' });
      await claimNone(T0 + 1300);
    });

    it('a write with an unknown outcome marks the contact: a success inside the settle window is rechecked, one after it clears the mark', async () => {
      await store.accept([{ contact: contact() }, { contact: contact({ contactId: 'c2' }) }].map((i) => ({ ...i, window: WINDOW })), T0);
      const [timedOut, refused] = await store.claimDue('acme', { now: T0 + 50, limit: 10, leaseMs: LEASE, owner: OWNER });
      expect(timedOut.unconfirmedWriteAt).toBeUndefined();
      await store.fail(timedOut, { attempt: failure(true), retryAt: T0 + 100, unconfirmedWrite: true }, T0 + 60);
      await store.fail(refused, { attempt: failure(true), retryAt: T0 + 100 }, T0 + 60);
      const [retry, plain] = await store.claimDue('acme', { now: T0 + 100, limit: 10, leaseMs: LEASE, owner: OWNER });
      expect([retry.contactId, retry.unconfirmedWriteAt, plain.contactId, plain.unconfirmedWriteAt]).toEqual(['c1', T0 + 60, 'c2', undefined]);

      // Success within the window: synced once more at recheckAt, and the mark stays for that sync.
      await store.complete(retry, { outcome: 'updated', leadId: 'L1', payloadHash: 'h', payload: {}, attempt: attempt('updated'), recheckAt: T0 + 3060 }, T0 + 120);
      await store.complete(plain, { outcome: 'updated', leadId: 'L2', payloadHash: 'h', payload: {}, attempt: attempt('updated') }, T0 + 120);
      expect(await store.contactStatus('acme', 'c1', T0 + 120)).toMatchObject({ state: 'pending', dueAt: new Date(T0 + 3060).toISOString(), payloadHash: 'h' });
      expect(await store.counts(T0 + 120)).toMatchObject({ pending: 1, inFlight: 0, retrying: 0 });
      await claimNone(T0 + 3059);
      const recheck = await claimOne(T0 + 3060);
      expect(recheck.unconfirmedWriteAt).toBe(T0 + 60);
      // A change while the recheck runs keeps its own window; the recheck's success, begun after the window, clears the mark.
      await store.accept([{ contact: contact({ name: 'B' }), window: WINDOW }], T0 + 3070);
      await store.complete(recheck, { outcome: 'updated', leadId: 'L1', payloadHash: 'h', payload: {}, attempt: attempt('updated') }, T0 + 3080);
      expect(await store.contactStatus('acme', 'c1', T0 + 3080)).toMatchObject({ state: 'pending', dueAt: new Date(T0 + 3120).toISOString() });
      const next = await claimOne(T0 + 3120);
      expect(next.unconfirmedWriteAt).toBeUndefined();
      await store.complete(next, { outcome: 'updated', leadId: 'L1', payloadHash: 'h2', payload: {}, attempt: attempt('updated') }, T0 + 3130);
      expect(await store.contactStatus('acme', 'c1', T0 + 3130)).toMatchObject({ state: 'synced' });
    });

    it('a lease that ends without an outcome marks the contact: release, dead owners, a lapsed lease claimed or taken back by a change', async () => {
      await store.accept(['c1', 'c2', 'c3', 'c4'].map((id) => ({ contact: contact({ contactId: id }), window: WINDOW })), T0);
      const [released] = await store.claimDue('acme', { now: T0 + 50, limit: 1, leaseMs: LEASE, owner: OWNER });
      const [orphaned] = await store.claimDue('acme', { now: T0 + 50, limit: 1, leaseMs: LEASE, owner: 'dead' });
      const [lapsed, takenBack] = await store.claimDue('acme', { now: T0 + 50, limit: 2, leaseMs: LEASE, owner: 'stalled' });
      await store.release(released, T0 + 60);
      await store.releaseOwners('acme', ['dead'], { now: T0 + 70, createTimeoutMs: 500 });
      await store.accept([{ contact: contact({ contactId: takenBack.contactId, name: 'B' }), window: WINDOW }], T0 + 50 + LEASE);
      const claims = await store.claimDue('acme', { now: T0 + 50 + LEASE + 50, limit: 10, leaseMs: LEASE, owner: 'next' });
      const marks = Object.fromEntries(claims.map((c) => [c.contactId, c.unconfirmedWriteAt]));
      expect(marks).toEqual({
        [released.contactId]: T0 + 60, [orphaned.contactId]: T0 + 70, [lapsed.contactId]: T0 + 50 + LEASE + 50, [takenBack.contactId]: T0 + 50 + LEASE,
      });
      // The stalled runner's late success wrote to the CRM after the contact was claimed again: a newer mark, so the
      // new holder's success is followed by another sync at once.
      await store.complete(lapsed, { outcome: 'updated', leadId: 'L1', payloadHash: 'h-old', payload: {}, attempt: attempt('updated') }, T0 + 50 + LEASE + 60);
      const current = claims.find((c) => c.contactId === lapsed.contactId)!;
      await store.complete(current, { outcome: 'updated', leadId: 'L1', payloadHash: 'h', payload: {}, attempt: attempt('updated') }, T0 + 50 + LEASE + 70);
      const again = await claimOne(T0 + 50 + LEASE + 70);
      expect(again).toMatchObject({ contactId: lapsed.contactId, unconfirmedWriteAt: T0 + 50 + LEASE + 60 });
    });

    it('renewing a held lease extends it: nobody claims the contact until the renewed lease lapses', async () => {
      await store.accept([{ contact: contact(), window: WINDOW }], T0);
      const claim = await claimOne(T0 + 50);
      expect(await store.renewLease(claim, T0 + 900, LEASE)).toBe(true);
      expect(await store.nextDueAt('acme')).toBe(T0 + 900 + LEASE);
      await claimNone(T0 + 50 + LEASE);
      expect(await store.contactStatus('acme', 'c1', T0 + 50 + LEASE)).toMatchObject({ state: 'in-flight' });
      // A lease that lapsed but was taken by nobody is still held.
      expect(await store.renewLease(claim, T0 + 2000, LEASE)).toBe(true);
      await claimNone(T0 + 2000 + LEASE - 1);
      await store.complete(claim, { outcome: 'created', leadId: 'L1', payloadHash: 'h', payload: {}, attempt: attempt('created') }, T0 + 2100);
      expect(await store.contactStatus('acme', 'c1', T0 + 2100)).toMatchObject({ state: 'synced', leadId: 'L1' });
      // A settled lease is not renewed back to life.
      expect(await store.renewLease(claim, T0 + 2200, LEASE)).toBe(false);
      expect(await store.nextDueAt('acme')).toBeUndefined();
    });

    it('renewing a lease that lapsed and was taken by another claim, or by a change, returns false and changes nothing', async () => {
      await store.accept([{ contact: contact() }, { contact: contact({ contactId: 'c2' }) }].map((i) => ({ ...i, window: WINDOW })), T0);
      const [stale, staleC2] = await store.claimDue('acme', { now: T0 + 50, limit: 10, leaseMs: LEASE, owner: 'old' });
      const [current] = await store.claimDue('acme', { now: T0 + 50 + LEASE, limit: 1, leaseMs: LEASE, owner: 'new' });
      expect(current.contactId).toBe(stale.contactId);
      expect(await store.renewLease(stale, T0 + 1100, LEASE)).toBe(false);
      expect(await store.nextDueAt('acme')).toBe(T0 + 50 + LEASE); // c2's lapsed lease; c1 is held until T0 + 50 + 2 * LEASE
      expect(await store.leaseOwners('acme').then((o) => o.sort())).toEqual(['new', 'old']);
      // c2's lapsed lease is taken back by a change: renewing it finds it gone too.
      await store.accept([{ contact: contact({ contactId: 'c2', name: 'B' }), window: WINDOW }], T0 + 1100);
      expect(await store.renewLease(staleC2, T0 + 1110, LEASE)).toBe(false);
      expect(await store.contactStatus('acme', 'c2', T0 + 1110)).toMatchObject({ state: 'pending', dueAt: new Date(T0 + 1150).toISOString() });
      expect(await store.leaseOwners('acme')).toEqual(['new']);
      await store.complete(current, { outcome: 'created', leadId: 'L1', payloadHash: 'h', payload: {}, attempt: attempt('created') }, T0 + 1200);
      expect(await store.contactStatus('acme', 'c1', T0 + 1200)).toMatchObject({ state: 'synced', leadId: 'L1' });
      expect(await store.leaseOwners('acme')).toEqual([]);
    });

    it('releasing dead owners makes their contacts due now and leaves every other owner\'s lease alone', async () => {
      await store.accept(['c1', 'c2', 'c3'].map((id) => ({ contact: contact({ contactId: id }), window: WINDOW })), T0);
      await store.accept([{ contact: contact({ tenant: 'globex' }), window: WINDOW }], T0);
      const [dead1] = await store.claimDue('acme', { now: T0 + 50, limit: 1, leaseMs: LEASE, owner: 'dead' });
      const [alive] = await store.claimDue('acme', { now: T0 + 50, limit: 1, leaseMs: LEASE, owner: 'alive' });
      const [dead2] = await store.claimDue('acme', { now: T0 + 50, limit: 1, leaseMs: LEASE, owner: 'dead' });
      await store.claimDue('globex', { now: T0 + 50, limit: 1, leaseMs: LEASE, owner: 'dead' });
      await store.fail(dead2, { attempt: failure(true), retryAt: T0 + 60 }, T0 + 55);
      const [retried] = await store.claimDue('acme', { now: T0 + 60, limit: 1, leaseMs: LEASE, owner: 'dead' });
      expect(retried.contactId).toBe(dead2.contactId);
      expect(await store.leaseOwners('acme').then((o) => o.sort())).toEqual(['alive', 'dead']);

      expect(await store.releaseOwners('acme', ['dead', 'gone'], { now: T0 + 70, createTimeoutMs: 500 })).toBe(2);
      expect(await store.counts(T0 + 70)).toMatchObject({ pending: 1, retrying: 1, inFlight: 2 }); // alive's, and globex's
      expect(await store.contactStatus('acme', dead1.contactId, T0 + 70)).toMatchObject({ state: 'pending', dueAt: new Date(T0 + 70).toISOString() });
      expect(await store.contactStatus('acme', dead2.contactId, T0 + 70)).toMatchObject({ state: 'retrying' });
      expect(await store.leaseOwners('acme')).toEqual(['alive']);
      expect(await store.leaseOwners('globex')).toEqual(['dead']);
      const reclaimed = await store.claimDue('acme', { now: T0 + 70, limit: 10, leaseMs: LEASE, owner: 'next' });
      expect(reclaimed.map((c) => c.contactId).sort()).toEqual([dead1.contactId, dead2.contactId].sort());
      expect(reclaimed.find((c) => c.contactId === dead2.contactId)).toMatchObject({ failures: 1 });
      // The dead owner's late answers no longer settle anything; alive's lease still holds.
      expect(await store.renewLease(dead1, T0 + 80, LEASE)).toBe(false);
      expect(await store.renewLease(alive, T0 + 80, LEASE)).toBe(true);
      expect(await store.releaseOwners('acme', ['dead'], { now: T0 + 90, createTimeoutMs: 500 })).toBe(0);
    });

    it('a dead owner\'s unconfirmed create is due once it has timed out, even past the end its lease would have had', async () => {
      await store.accept([{ contact: contact() }, { contact: contact({ contactId: 'c2' }) }].map((i) => ({ ...i, window: WINDOW })), T0);
      const [a, b] = await store.claimDue('acme', { now: T0 + 50, limit: 10, leaseMs: LEASE, owner: 'dead' });
      await store.markCreateIntent(a, T0 + 55);
      await store.markCreateIntent(b, T0 + 55);
      expect(await store.releaseOwners('acme', ['dead'], { now: T0 + 60, createTimeoutMs: 300 })).toBe(1 + 1);
      // Both had a create in flight; with a 300 ms timeout they are due at T0 + 355 ...
      await claimNone(T0 + 354);
      const retried = await store.claimDue('acme', { now: T0 + 355, limit: 10, leaseMs: LEASE, owner: 'next' });
      expect(retried.map((c) => c.unconfirmedCreateAt)).toEqual([T0 + 55, T0 + 55]);
      // ... and with a timeout longer than the lease, once that create has timed out all the same (claimDue would
      // hold them back until then).
      await store.releaseOwners('acme', ['next'], { now: T0 + 360, createTimeoutMs: 10 * LEASE });
      expect(await store.nextDueAt('acme')).toBe(T0 + 55 + 10 * LEASE);
      await claimNone(T0 + 54 + 10 * LEASE);
    });

    it('a change to a contact whose runner died waits for its window again', async () => {
      await store.accept([{ contact: contact() }].map((i) => ({ ...i, window: WINDOW })), T0);
      const orphan = await claimOne(T0 + 50);
      await store.accept([{ contact: contact({ name: 'B' }), window: WINDOW }], T0 + 50 + LEASE + 10);
      expect(await store.nextDueAt('acme')).toBe(T0 + 50 + LEASE + 60);
      expect(await store.counts(T0 + 2000)).toMatchObject({ pending: 1, inFlight: 0 });
      // The dead runner's late answer no longer settles the contact.
      await store.complete(orphan, { outcome: 'created', leadId: 'L1', payloadHash: 'h', payload: {}, attempt: attempt('created') }, T0 + 2000);
      expect(await store.counts(T0 + 2000)).toMatchObject({ pending: 1, leads: 1 });
    });

    it(`history keeps the last ${HISTORY_LENGTH} attempts, newest first`, async () => {
      await store.accept([{ contact: contact(), window: WINDOW }], T0);
      let now = T0 + 50;
      for (let i = 0; i < HISTORY_LENGTH + 5; i++) {
        const claim = await claimOne(now);
        await store.fail(claim, { attempt: { ...failure(true, now), at: `attempt-${i}` }, retryAt: now + 1 }, now);
        now += 1;
      }
      const status = await store.contactStatus('acme', 'c1', now);
      expect(status?.attempts).toBe(HISTORY_LENGTH + 5);
      expect(status?.history).toHaveLength(HISTORY_LENGTH);
      expect(status?.history[0].at).toBe(`attempt-${HISTORY_LENGTH + 4}`);
      expect(status?.history.at(-1)?.at).toBe('attempt-5');
    });

    it(`history keeps the last ${HISTORY_LENGTH} attempts of completed syncs too, and the state of the last one`, async () => {
      let now = T0;
      for (let i = 0; i < HISTORY_LENGTH + 3; i++) {
        await store.accept([{ contact: contact({ name: `v${i}` }), window: WINDOW }], now);
        now += WINDOW.quietMs;
        const claim = await claimOne(now);
        expect(claim.contact.name).toBe(`v${i}`);
        const outcome = i === 0 ? 'created' : 'updated';
        await store.complete(claim, { outcome, leadId: 'L1', payloadHash: `h${i}`, payload: { name: `v${i}` }, attempt: { ...attempt(outcome, now), at: `attempt-${i}`, leadId: 'L1' } }, now);
        now += 1;
      }
      const status = await store.contactStatus('acme', 'c1', now);
      expect(status).toMatchObject({ state: 'synced', leadId: 'L1', payloadHash: `h${HISTORY_LENGTH + 2}`, lastOutcome: 'updated', attempts: HISTORY_LENGTH + 3 });
      expect(status?.history.map((h) => h.at)).toEqual(Array.from({ length: HISTORY_LENGTH }, (_, k) => `attempt-${HISTORY_LENGTH + 2 - k}`));
      expect(await store.counts(now)).toMatchObject({ pending: 0, inFlight: 0, leads: 1 });
      await claimNone(now + 10_000);
    });
  });
}
