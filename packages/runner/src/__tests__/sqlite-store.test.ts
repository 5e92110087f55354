import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import Database from 'better-sqlite3';
import { SqliteStore } from '../store/sqlite/sqlite-store';
import { HISTORY_LENGTH } from '../store/types';
import { contact, describeStore } from './store-suite';

const dirs: string[] = [];
function tmpFile(): string {
  const dir = mkdtempSync(join(tmpdir(), 'crm-sync-store-'));
  dirs.push(dir);
  return join(dir, 'data', 'crm-sync.db');
}
afterAll(() => { for (const d of dirs) rmSync(d, { recursive: true, force: true }); });

describeStore('SqliteStore', async () => new SqliteStore(tmpFile()));

const T0 = Date.parse('2024-05-06T09:00:00.000Z');
const WINDOW = { quietMs: 50, maxWaitMs: 200 };

describe('SqliteStore specifics', () => {
  it('is WAL with synchronous=FULL: an accepted change is durable', async () => {
    const store = new SqliteStore(tmpFile());
    expect(store.db.pragma('journal_mode', { simple: true })).toBe('wal');
    expect(store.db.pragma('synchronous', { simple: true })).toBe(2);
    await store.close();
  });

  it(`keeps only the last ${HISTORY_LENGTH} attempt records on disk, whether attempts complete or fail`, async () => {
    const store = new SqliteStore(tmpFile());
    const rows = () => (store.db.prepare("SELECT count(*) AS n, min(n) AS first FROM attempts WHERE contact_id = 'c1'").get() as { n: number; first: number });
    let now = T0;
    for (let i = 0; i < 2 * HISTORY_LENGTH; i++) {
      await store.accept([{ contact: contact({ name: `v${i}` }), window: WINDOW }], now);
      now += WINDOW.quietMs;
      const [claim] = await store.claimDue('acme', { now, limit: 1, leaseMs: 1000, owner: 'test' });
      const attempt = { at: new Date(now).toISOString(), calls: [] };
      if (i % 2) await store.complete(claim!, { outcome: 'updated', leadId: 'L1', payloadHash: `h${i}`, payload: {}, attempt: { ...attempt, outcome: 'updated' } }, now);
      else await store.fail(claim!, { attempt: { ...attempt, outcome: 'failed', error: { code: 'ERR_HTTP_STATUS', message: 'no', retryable: false } } }, now);
      now += 1;
    }
    expect(rows()).toEqual({ n: HISTORY_LENGTH, first: HISTORY_LENGTH + 1 });
    await store.close();
  });

  it('a large batch (multi-row inserts) gives what accepting its events one by one gives', async () => {
    // 250 events: new contacts, a contact that exists inside a 100-row chunk, one in the 10-row chunks and one in the
    // row-by-row tail, a contact twice in the batch (the second older: stale), and a redelivered eventId.
    const events = (ts: (i: number) => string) => Array.from({ length: 250 }, (_, i) => contact({ contactId: `c${i}`, ts: ts(i), name: `n${i}` }));
    const batch = events(() => '2024-05-06T09:00:10.000Z');
    batch[120] = contact({ contactId: 'c7', ts: '2024-05-06T09:00:05.000Z', name: 'older' });
    batch[130] = contact({ contactId: 'c8', eventId: 'seen', ts: '2024-05-06T09:00:10.000Z' });
    const primed = async (store: SqliteStore) => {
      await store.accept([50, 205, 247].map((i) => ({ contact: contact({ contactId: `c${i}`, ts: '2024-05-06T09:00:00.000Z', name: 'before' }), window: WINDOW })), T0);
      await store.accept([{ contact: contact({ contactId: 'x', eventId: 'seen' }), window: WINDOW }], T0);
      return store;
    };
    const together = await primed(new SqliteStore(tmpFile()));
    const oneByOne = await primed(new SqliteStore(tmpFile()));
    const outcomes = await together.accept(batch.map((c) => ({ contact: c, window: WINDOW })), T0 + 10);
    const expected = [];
    for (const c of batch) expected.push(...await oneByOne.accept([{ contact: c, window: WINDOW }], T0 + 10));
    expect(outcomes).toEqual(expected);
    expect(outcomes.filter((o) => o !== 'accepted')).toEqual(['stale', 'duplicate']);
    const rows = (s: SqliteStore) => s.db.prepare('SELECT contact_id, contact, version, status, due_at, pending_since, newest_ts FROM contacts ORDER BY contact_id').all();
    expect(rows(together)).toEqual(rows(oneByOne));
    expect(await together.counts(T0 + 10)).toEqual(await oneByOne.counts(T0 + 10));
    expect((await together.counts(T0 + 10)).pending).toBe(249); // c0…c249 but c120 and c130, and x
    const c50 = together.db.prepare("SELECT version, contact FROM contacts WHERE contact_id = 'c50'").get() as { version: number; contact: string };
    expect(c50.version).toBe(2);
    expect(JSON.parse(c50.contact).name).toBe('n50');
    await together.close();
    await oneByOne.close();
  });

  it('an outcome that fails in a group commit is rolled back alone, counters included', async () => {
    const store = new SqliteStore(tmpFile());
    await store.accept(['a', 'b'].map((contactId) => ({ contact: contact({ contactId }), window: WINDOW })), T0);
    const [a, b] = await store.claimDue('acme', { now: T0 + 50, limit: 2, leaseMs: 1000, owner: 'o' });
    const attempt = { at: 'x', outcome: 'created' as const, calls: [] };
    const [good, bad] = await Promise.allSettled([
      store.complete(a!, { outcome: 'created', leadId: 'L1', payloadHash: 'h', payload: {}, attempt }, T0 + 60),
      // A payload that cannot be serialised: this write throws inside the batch's transaction.
      store.complete(b!, { outcome: 'created', leadId: 'L2', payloadHash: 'h', payload: { n: 1n }, attempt }, T0 + 60),
    ]);
    expect(good.status).toBe('fulfilled');
    expect(bad.status).toBe('rejected');
    expect(await store.counts(T0 + 60)).toEqual({ pending: 0, inFlight: 1, retrying: 0, deadLetters: 0, leads: 1 });
    expect(await store.contactStatus('acme', 'b', T0 + 60)).toMatchObject({ state: 'in-flight', attempts: 0 });
    await store.close();
  });

  it('pending state and the lead store survive reopening the file', async () => {
    const file = tmpFile();
    const first = new SqliteStore(file);
    await first.accept([{ contact: contact({ eventId: 'e1' }), window: WINDOW }], T0);
    const [claim] = await first.claimDue('acme', { now: T0 + 50, limit: 1, leaseMs: 1000, owner: 'a' });
    await first.complete(claim, { outcome: 'created', leadId: 'L1', payloadHash: 'h', payload: { a: 1 }, attempt: { at: 'x', outcome: 'created', calls: [] } }, T0 + 60);
    await first.accept([{ contact: contact({ name: 'B' }), window: WINDOW }], T0 + 100);
    await first.close();

    const second = new SqliteStore(file);
    expect(await second.nextDueAt('acme')).toBe(T0 + 150);
    expect(await second.counts(T0 + 100)).toEqual({ pending: 1, inFlight: 0, retrying: 0, deadLetters: 0, leads: 1 });
    expect(await second.accept([{ contact: contact({ eventId: 'e1' }), window: WINDOW }], T0 + 110)).toEqual(['duplicate']);
    const [again] = await second.claimDue('acme', { now: T0 + 150, limit: 1, leaseMs: 1000, owner: 'b' });
    expect(again).toMatchObject({ leadId: 'L1', lastPayload: { a: 1 } });
    await second.close();
  });

  it('a file made before lease owners were kept gets the column on open, and its old leases simply lapse', async () => {
    const file = tmpFile();
    const old = new SqliteStore(file);
    await old.accept([{ contact: contact(), window: WINDOW }], T0);
    await old.claimDue('acme', { now: T0 + 50, limit: 1, leaseMs: 1000, owner: 'a' });
    old.db.exec('DROP INDEX contacts_lease_owner; ALTER TABLE contacts DROP COLUMN lease_owner');
    await old.close();

    const upgraded = new SqliteStore(file);
    expect(await upgraded.leaseOwners('acme')).toEqual([]);
    expect(await upgraded.claimDue('acme', { now: T0 + 1050, limit: 1, leaseMs: 1000, owner: 'b' })).toHaveLength(1);
    expect(await upgraded.leaseOwners('acme')).toEqual(['b']);
    await upgraded.close();
  });

  it('accept resolves only once its rows are committed (visible to another connection)', async () => {
    const file = tmpFile();
    const store = new SqliteStore(file);
    const reader = new Database(file, { readonly: true });
    const committed = () => (reader.prepare('SELECT count(*) AS n FROM contacts').get() as { n: number }).n;
    const calls = Array.from({ length: 50 }, (_, i) => store.accept([{ contact: contact({ contactId: `c${i}` }), window: WINDOW }], T0));
    expect(committed()).toBe(0);
    const seenAtResolve = await Promise.all(calls.map((p) => p.then(() => committed())));
    // One group commit: every caller is answered after all 50 rows are on disk.
    expect(seenAtResolve).toEqual(Array(50).fill(50));
    reader.close();
    await store.close();
  });

  it('claims and the next wake-up read the due index, not the table', async () => {
    const store = new SqliteStore(tmpFile());
    const plan = (sql: string, ...args: unknown[]) => (store.db.prepare(`EXPLAIN QUERY PLAN ${sql}`).all(...args) as Array<{ detail: string }>).map((r) => r.detail).join('; ');
    expect(plan('SELECT * FROM contacts WHERE tenant = ? AND due_at <= ? ORDER BY due_at LIMIT ?', 'acme', T0, 10)).toMatch(/USING INDEX contacts_due/);
    expect(plan('SELECT min(due_at) AS due FROM contacts WHERE tenant = ? AND due_at IS NOT NULL', 'acme')).toMatch(/contacts_due/);
    expect(plan('SELECT * FROM contacts WHERE tenant = ? AND lease_owner = ?', 'acme', 'o')).toMatch(/USING INDEX contacts_lease_owner/);
    await store.close();
  });
});
