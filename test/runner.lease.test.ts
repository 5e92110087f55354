/**
 * Leases on a manual clock: a sync that outlasts its lease keeps it (the dispatcher renews it), a lease lost anyway
 * is reported, and a runner starting takes over at once the contacts that dead runners of this host still hold.
 * The CRM calls are real HTTP; their latency is real time while the lease's time is the manual clock's.
 */
import { spawnSync } from 'node:child_process';
import { hostname } from 'node:os';
import { leaseOwnerId, ManualClock, Runner, SqliteStore } from '@crm-sync/runner';
import { event, HookLog, RunnerHarness, waitFor } from './runner.fixtures';

const LEASE = 30_000;
let h: RunnerHarness;
let clock: ManualClock;
const extra: Array<() => Promise<void>> = [];
afterEach(async () => {
  for (const close of extra.splice(0)) await close();
  await h?.close();
});

async function start(): Promise<void> {
  clock = new ManualClock();
  h = await RunnerHarness.start({ tenant: { quietMs: 100 }, runner: { clock, leaseMs: LEASE } });
}

/** A second runner on the harness's SQLite file and clock (another process, as far as the store can tell). */
function secondRunner(): { runner: Runner; store: SqliteStore; hookLog: HookLog } {
  const store = new SqliteStore(h.file);
  const hookLog = new HookLog();
  const runner = new Runner({ tenants: [h.tenant()], store, engine: h.engine, clock, hooks: hookLog.hooks, leaseMs: LEASE });
  extra.push(async () => { await runner.stop({ drainMs: 0 }); await store.close(); });
  return { runner, store, hookLog };
}

/** Two runners on one store; the harness's runner has sent c1's create, which takes 1.5 s (real time) to answer. */
async function twoRunnersWithACreateOnTheWire(): Promise<ReturnType<typeof secondRunner>> {
  await start();
  const other = secondRunner();
  h.crm.addFault({ route: 'create', latencyMs: 1500, times: 1 });
  void h.runner.start();
  void other.runner.start();
  await h.runner.ingest([event('c1')]);
  await clock.advance(100);
  await waitFor('the create request', () => h.routes().includes('create'));
  return other;
}

describe('leases (manual clock)', () => {
  it('a sync that takes three leases is claimed once: neither this runner nor another claims it again', async () => {
    const other = await twoRunnersWithACreateOnTheWire();

    for (let i = 0; i < 9; i++) await clock.advance(LEASE / 3);
    const create = h.crm.requests().find((r) => r.route === 'create')!;
    expect(create.status).toBe(0); // still on the wire, 90 s of lease time later

    await waitFor('the lead', () => h.crm.leads().length === 1);
    await h.runner.whenIdle();
    expect(h.routes()).toEqual(['fetch', 'create']);
    expect([...h.hookLog.of('onSync'), ...other.hookLog.of('onSync')]).toEqual([expect.objectContaining({ contactId: 'c1', outcome: 'created' })]);
    expect([...h.hookLog.of('onError'), ...other.hookLog.of('onError')]).toEqual([]);
    expect(await h.runner.contact('acme', 'c1')).toMatchObject({ state: 'synced', leadId: h.crm.leads()[0].lead_id });
  });

  it('a runner stopping with a create still on the wire hands it back; another runner waits for that create before it fetches (one lead)', async () => {
    const other = await twoRunnersWithACreateOnTheWire();

    // The drain ends with the create unanswered: the claim is handed back.
    const stopping = h.runner.stop({ drainMs: 0 });
    await clock.advance(0);
    await stopping;
    // The seed contract's create times out after 10 s: until then the other runner leaves the contact alone ...
    await clock.advance(9_000);
    await waitFor('the lead the handed-back create made', () => h.crm.leads().length === 1);
    expect(h.routes()).toEqual(['fetch', 'create']);
    // ... then syncs it: that lead is updated (its id stored by the late answer, or found by a fetch), not created again.
    await clock.advance(1_100);
    await waitFor('the other runner\'s sync', () => other.hookLog.of('onSync').length === 1);
    expect(other.hookLog.of('onSync')).toEqual([expect.objectContaining({ contactId: 'c1', outcome: 'updated' })]);
    expect(h.routes().filter((r) => r === 'create')).toHaveLength(1);
    expect(h.crm.leads()).toHaveLength(1);
  });

  it('a lease lost anyway is reported as ERR_LEASE_LOST; the late answer only stores the lead id', async () => {
    await start();
    h.crm.addFault({ route: 'create', latencyMs: 1000, times: 1 });
    void h.runner.start();
    await h.runner.ingest([event('c1')]);
    await clock.advance(100);
    await waitFor('the create request', () => h.routes().includes('create'));
    // Another store takes the contact from under the runner (as if its renewals had stopped for a whole lease).
    const intruder = new SqliteStore(h.file);
    extra.push(() => intruder.close());
    await intruder.releaseOwners('acme', await intruder.leaseOwners('acme'), { now: clock.now(), createTimeoutMs: 0 });
    expect(await intruder.claimDue('acme', { now: clock.now(), limit: 1, leaseMs: LEASE, owner: 'intruder' })).toHaveLength(1);

    await clock.advance(LEASE / 3);
    expect(h.hookLog.of('onError')).toEqual([expect.objectContaining({ contactId: 'c1', during: 'renew-lease', error: expect.objectContaining({ code: 'ERR_LEASE_LOST' }) })]);
    await waitFor('the create to answer', () => h.hookLog.of('onSync').length === 1);
    expect(await h.runner.contact('acme', 'c1')).toMatchObject({ state: 'in-flight', leadId: h.crm.leads()[0].lead_id });
    expect(await intruder.leaseOwners('acme')).toEqual(['intruder']);
  });

  it('at start, the contacts held by dead runners of this host are synced at once; live and other hosts\' leases are left to lapse', async () => {
    await start();
    const dead = leaseOwnerId(spawnSync(process.execPath, ['-e', '']).pid!);
    const elsewhere = dead.replace(hostname(), 'elsewhere');
    await h.runner.ingest(['dead', 'dead-create', 'live', 'elsewhere'].map((id, i) => event(id, { phone: `+1415555010${i}` })));
    await clock.advance(100);
    const claim = (owner: string) => h.store.claimDue('acme', { now: clock.now(), limit: 1, leaseMs: LEASE, owner });
    await claim(dead);
    const [unconfirmed] = await claim(dead);
    await h.store.markCreateIntent(unconfirmed, clock.now());
    await claim(leaseOwnerId());
    await claim(elsewhere);

    await h.runner.start();
    // Its sync is over once it is recorded (onSync), a moment after the CRM made the lead.
    await waitFor('the dead runner\'s contact', () => h.hookLog.of('onSync').length === 1);
    const synced = () => h.hookLog.of('onSync').map((s) => s.contactId).sort();
    expect(synced()).toEqual(['dead']);
    expect(h.crm.leads()).toHaveLength(1);
    // The one whose create may still be on its way is due once that create has timed out (the mapping's 10 s).
    await clock.advance(10_000);
    await waitFor('the unconfirmed create\'s contact', () => h.hookLog.of('onSync').length === 2);
    expect(synced()).toEqual(['dead', 'dead-create']);
    expect(h.routes().filter((r) => r === 'fetch')).toHaveLength(2); // the retry fetched before it created
    await clock.advance(LEASE - 10_000);
    await waitFor('the lapsed leases\' contacts', () => ['elsewhere', 'live'].every((id) => synced().includes(id)));
    // Every lease that ended without an outcome may have left a write on its way: each contact is synced once more
    // after the settle window (twice the mapping's 10 s timeout).
    await clock.advance(20_000);
    await h.runner.whenIdle();
    expect(synced()).toEqual(['dead', 'dead', 'dead-create', 'dead-create', 'elsewhere', 'elsewhere', 'live', 'live']);
    expect(h.crm.leads()).toHaveLength(4);
  });
});

describe('a dead runner\'s write whose outcome never reached the store (manual clock)', () => {
  /**
   * The crash soak's lost change (contact-0725, seed 20241106): the contact was synced as A; a runner sent B, and the
   * CRM applied it, but the runner was killed before it recorded the outcome; the contact then changed back to A. The
   * runner that took over compared A's payload with the stored hash (still A's) and skipped it as unchanged: the CRM
   * kept B for good.
   */
  it('after taking over, a change back to the last recorded payload is still sent', async () => {
    await start();
    const a = { name: 'Ananya Nair', attributes: { city: 'Chennai', stage: 'qualified' } };
    const b = { name: 'Kabir Nair', attributes: { city: 'Delhi', stage: 'new' } };
    void h.runner.start();
    await h.runner.ingest([event('c1', { ...a, ts: '2024-05-06T08:00:01Z' })]);
    await clock.advance(100);
    await h.runner.whenIdle();
    await h.runner.stop({ drainMs: 0 });
    expect(h.crm.leads().map((l) => l.name)).toEqual([a.name]);

    // The dead runner: claims B and sends it (the CRM applies it), then dies before recording the outcome.
    const dead = leaseOwnerId(spawnSync(process.execPath, ['-e', '']).pid!);
    await h.runner.ingest([event('c1', { ...b, ts: '2024-05-06T08:00:02Z' })]);
    await clock.advance(100);
    const [claim] = await h.store.claimDue('acme', { now: clock.now(), limit: 1, leaseMs: LEASE, owner: dead });
    await h.engine.sync(h.tenant().mapping, claim.contact, { knownLeadId: claim.leadId, baseUrl: h.crm.url });
    expect(h.crm.leads().map((l) => l.name)).toEqual([b.name]);
    // Back to A, while the dead runner's lease is still on the contact.
    await h.runner.ingest([event('c1', { ...a, ts: '2024-05-06T08:00:03Z' })]);

    const next = secondRunner();
    await next.runner.start();
    await waitFor('the taken-over sync', () => next.hookLog.of('onSync').length === 1);
    expect(next.hookLog.of('onSync')[0]).toMatchObject({ contactId: 'c1', outcome: 'updated' });
    expect(h.crm.leads().map((l) => l.name)).toEqual([a.name]);
    // The dead runner's write might still have been on its way: once it can no longer land (the settle window, twice
    // the mapping's 10 s timeout), the contact is synced once more, and only then counts as synced.
    expect(await next.runner.contact('acme', 'c1')).toMatchObject({ state: 'pending' });
    await clock.advance(20_000);
    await next.runner.whenIdle();
    expect(next.hookLog.of('onSync').map((s) => s.outcome)).toEqual(['updated', 'updated']);
    expect(await next.runner.contact('acme', 'c1')).toMatchObject({ state: 'synced' });
    expect(h.crm.leads().map((l) => l.name)).toEqual([a.name]);
  });
});
