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

describe('leases (manual clock)', () => {
  it('a sync that takes three leases is claimed once: neither this runner nor another claims it again', async () => {
    await start();
    const other = secondRunner();
    h.crm.addFault({ route: 'create', latencyMs: 1500, times: 1 });
    void h.runner.start();
    void other.runner.start();
    await h.runner.ingest([event('c1')]);
    await clock.advance(100);
    await waitFor('the create request', () => h.routes().includes('create'));

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
    await waitFor('the dead runner\'s contact', () => h.crm.leads().length === 1);
    const synced = () => h.hookLog.of('onSync').map((s) => s.contactId).sort();
    expect(synced()).toEqual(['dead']);
    // The one whose create may still be on its way is due once that create has timed out (the mapping's 10 s).
    await clock.advance(10_000);
    await waitFor('the unconfirmed create\'s contact', () => h.hookLog.of('onSync').length === 2);
    expect(synced()).toEqual(['dead', 'dead-create']);
    expect(h.routes().filter((r) => r === 'fetch')).toHaveLength(2); // the retry fetched before it created
    await clock.advance(LEASE - 10_000);
    await h.runner.whenIdle();
    expect(synced()).toEqual(['dead', 'dead-create', 'elsewhere', 'live']);
    expect(h.crm.leads()).toHaveLength(4);
  });
});
