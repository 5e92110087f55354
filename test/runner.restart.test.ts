import { event, RunnerHarness, seedContract, sleep, waitFor } from './runner.fixtures';

/**
 * A 1 s request timeout: a sync that a stop or a crash ends without an outcome marks its contact, which is synced once
 * more at the end of the settle window (twice the timeout, at least 3 s) rather than 20 s later.
 */
const mapping = seedContract(1000);

let h: RunnerHarness;
afterEach(async () => { await h?.close(); });

describe('Runner restarts on the same SQLite file', () => {
  it('a stopped runner\'s pending contacts are synced on time by the next one', async () => {
    h = await RunnerHarness.start({ tenant: { quietMs: 300 } });
    h.runner.start();
    await h.runner.ingest([event('c1'), event('c2', { phone: '+14155550100' }), event('c3', { phone: '+14155550101' })]);
    await h.runner.stop({ drainMs: 100 });
    await h.store.close();
    expect(h.routes()).toEqual([]);

    const next = h.open();
    expect(await next.status()).toMatchObject({ pending: 3 });
    next.start();
    await next.whenIdle();
    expect(h.crm.leads().map((l) => l.email).sort()).toEqual(['c1@example.com', 'c2@example.com', 'c3@example.com']);
    expect(h.routes().filter((r) => r === 'create')).toHaveLength(3);
  });

  it('stop hands back a sync that does not finish within drainMs; the next runner completes it without a duplicate', async () => {
    h = await RunnerHarness.start({ tenant: { quietMs: 30, mapping } });
    h.crm.addFault({ route: 'create', latencyMs: 400, times: 1 });
    h.runner.start();
    await h.runner.ingest([event('c1', { name: 'Priya' })]);
    await waitFor('the create request', () => h.routes().includes('create'));
    await h.runner.stop({ drainMs: 50 });
    expect(await h.runner.status()).toMatchObject({ pending: 1, inFlight: 0 });
    await sleep(450); // the slow create lands in the CRM (its late answer only stores the lead id)
    await h.store.close();

    const next = h.open();
    next.start();
    await next.whenIdle();
    expect(h.crm.leads()).toEqual([expect.objectContaining({ lead_id: 'L000001', name: 'Priya' })]);
  });

  it('a runner that dies between sending a create and storing its id: the next one fetches first, no duplicate lead', async () => {
    h = await RunnerHarness.start({ tenant: { quietMs: 30, mapping }, runner: { leaseMs: 600 } });
    h.crm.addFault({ route: 'create', latencyMs: 300, times: 1 });
    h.runner.start();
    await h.runner.ingest([event('c1', { name: 'Priya' })]);
    await waitFor('the create request', () => h.routes().includes('create'));
    // "kill -9": the process's storage goes away mid-sync; nothing it does afterwards is recorded.
    const dead = h.store;
    await dead.close();
    await h.runner.stop({ drainMs: 0 });
    await waitFor('the create to commit in the CRM', () => h.crm.leads().length === 1);

    const next = h.open({ leaseMs: 600 });
    await next.ingest([event('c1', { name: 'Priya Sharma' })]);
    next.start();
    await next.whenIdle();
    expect(h.crm.leads()).toEqual([expect.objectContaining({ lead_id: 'L000001', name: 'Priya Sharma' })]);
    // The dead runner's hold on the person (its phone) was left behind, so the next sync was deferred until it lapsed
    // (about the settle window after the create was sent), then found the lead. An update begun inside the settle
    // window is sent once more when it ends (one update or two, by a few ms); never a second create.
    expect(['fetch,create,fetch,update', 'fetch,create,fetch,update,update']).toContain(h.routes().join(','));
    expect(h.hookLog.of('onDeferred').length).toBeGreaterThan(0);
    // The dead runner's hand-back could not be written (its storage was gone); its abandoned attempt's failure is not reported.
    expect(h.hookLog.of('onError').map((e) => e.during)).toEqual(['release']);
  });

  it('a runner that dies while its update is on the way (it lands), then an attribute removed: the next one clears the field', async () => {
    h = await RunnerHarness.start({ tenant: { quietMs: 30, mapping }, runner: { leaseMs: 600 } });
    h.runner.start();
    await h.runner.ingest([event('c1', { attributes: { city: 'Mumbai' } })]);
    await h.runner.whenIdle();
    h.crm.addFault({ route: 'update', latencyMs: 300, times: 1 });
    await h.runner.ingest([event('c1', { attributes: { city: 'Mumbai', utm_campaign: 'diwali' } })]);
    await waitFor('the update request', () => h.routes().includes('update'));
    // "kill -9": nothing the process does afterwards is recorded; its update still lands.
    await h.store.close();
    await h.runner.stop({ drainMs: 0 });
    await waitFor('the update to land', () => h.crm.leads()[0]?.custom_fields?.utm_campaign === 'diwali');

    const next = h.open({ leaseMs: 600 });
    await next.ingest([event('c1', { attributes: { city: 'Pune' } })]);
    next.start();
    await next.whenIdle();
    // Nothing recorded said the dead runner sent utm_campaign: the snapshot its lease was syncing did.
    expect(h.crm.leads()).toEqual([expect.objectContaining({ lead_id: 'L000001', custom_fields: { city: 'Pune' } })]);
  });

  it('the dead runner\'s claim is taken over only after its lease lapses', async () => {
    h = await RunnerHarness.start({ tenant: { quietMs: 30, mapping }, runner: { leaseMs: 500 } });
    h.crm.addFault({ route: 'fetch', hang: true, times: 1 });
    h.runner.start();
    await h.runner.ingest([event('c1')]);
    await waitFor('the fetch request', () => h.routes().includes('fetch'));
    const claimedAt = Date.now();
    await h.store.close();
    await h.runner.stop({ drainMs: 0 });

    const next = h.open({ leaseMs: 500 });
    next.start();
    await waitFor('a second fetch', () => h.routes().filter((r) => r === 'fetch').length === 2);
    expect(Date.now() - claimedAt).toBeGreaterThanOrEqual(400);
    await next.whenIdle();
    expect(h.crm.leads()).toHaveLength(1);
  });
});
