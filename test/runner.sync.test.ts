import { compileMapping } from '@crm-sync/core';
import { registerBuiltinAdapters, Runner } from '@crm-sync/runner';
import { startReferenceCrm } from '@crm-sync/testkit';
import { SEED_MAPPING, seedMappingText } from './seed-mapping';

/** The seed mapping with the update-only flow. */
function updateOnlyMapping() {
  registerBuiltinAdapters();
  return compileMapping(seedMappingText().replace(/^flow: .*$/m, 'flow: update-only'), { file: SEED_MAPPING });
}

/** A harness whose contact c1 was synced once (lead L000001), its runner stopped: for a second runner on its store. */
async function syncedOnceThenStopped(): Promise<RunnerHarness> {
  const harness = await RunnerHarness.start({ tenant: { quietMs: 30 } });
  harness.runner.start();
  await harness.runner.ingest([event('c1')]);
  await harness.runner.whenIdle();
  expect(await harness.runner.contact('acme', 'c1')).toMatchObject({ leadId: 'L000001' });
  await harness.runner.stop();
  return harness;
}
import { CRM_KEY, event, RunnerHarness, seedContract, sleep, waitFor } from './runner.fixtures';

let h: RunnerHarness;
afterEach(async () => { await h?.close(); });

describe('Runner against the reference CRM: debounce and the lead store', () => {
  it('a burst of changes → exactly one sync of the last state', async () => {
    h = await RunnerHarness.start({ tenant: { quietMs: 300 } });
    h.runner.start();
    for (const name of ['A', 'B', 'C', 'D', 'Final']) {
      expect(await h.runner.ingest([event('c1', { name })])).toEqual({ accepted: 1, ignored: 0, rejected: [] });
      await sleep(20);
    }
    expect(h.routes()).toEqual([]);
    await h.runner.whenIdle();
    expect(h.routes()).toEqual(['fetch', 'create']);
    expect(h.crm.leads()).toEqual([expect.objectContaining({ name: 'Final', phone: '+919876543210', email: 'c1@example.com', custom_fields: { city: 'Mumbai' } })]);
    expect(await h.runner.contact('acme', 'c1')).toMatchObject({ state: 'synced', leadId: 'L000001', lastOutcome: 'created', attempts: 1 });
  });

  it('max wait fires for a contact that never goes quiet', async () => {
    h = await RunnerHarness.start({ tenant: { quietMs: 250, maxWaitMs: 500 } });
    h.runner.start();
    const started = Date.now();
    let n = 0;
    while (Date.now() - started < 1000) {
      await h.runner.ingest([event('c1', { name: `change ${++n}` })]);
      await sleep(40);
    }
    // Changes every 40 ms never leave 250 ms of quiet, yet the contact was synced while they kept coming.
    const first = h.crm.requests()[0];
    expect(first).toBeDefined();
    const firstAfter = Date.parse(first.at) - started;
    expect(firstAfter).toBeGreaterThanOrEqual(480);
    expect(firstAfter).toBeLessThan(950);
    await h.runner.whenIdle();
    expect(h.crm.leads()).toEqual([expect.objectContaining({ name: `change ${n}` })]);
    expect(h.routes().filter((r) => r === 'create')).toHaveLength(1);
  });

  it('new contact → fetch + create; a later change → one update by the stored id; unchanged → no call', async () => {
    h = await RunnerHarness.start({ tenant: { quietMs: 50 } });
    h.runner.start();
    await h.runner.ingest([event('c1')]);
    await h.runner.whenIdle();
    expect(h.routes()).toEqual(['fetch', 'create']);

    await h.runner.ingest([event('c1', { name: 'Priya S.' })]);
    await h.runner.whenIdle();
    expect(h.routes()).toEqual(['fetch', 'create', 'update']);
    expect(h.crm.requests()[2]).toMatchObject({ method: 'POST', path: '/crm/update/L000001', status: 200 });
    expect(h.crm.leads()).toEqual([expect.objectContaining({ lead_id: 'L000001', name: 'Priya S.' })]);

    // The same state again (a new event, but the payload is the same): no call.
    await h.runner.ingest([event('c1', { name: 'Priya S.', tags: ['only-tags-changed'] })]);
    await h.runner.whenIdle();
    expect(h.routes()).toHaveLength(3);
    const status = await h.runner.contact('acme', 'c1');
    expect(status).toMatchObject({ state: 'synced', leadId: 'L000001', lastOutcome: 'unchanged', attempts: 3 });
    expect(status?.history.map((a) => a.outcome)).toEqual(['unchanged', 'updated', 'created']);
    expect(status?.history[1].calls).toEqual([expect.objectContaining({ step: 'update', method: 'POST', status: 200 })]);
    expect(h.hookLog.of('onSync').map((e) => e.outcome)).toEqual(['created', 'updated', 'unchanged']);
  });

  it('resync sends unchanged contacts again (one update each, spread out), then they are skipped as unchanged again', async () => {
    h = await RunnerHarness.start({ tenant: { quietMs: 50 } });
    h.runner.start();
    await h.runner.ingest([event('c1'), event('c2', { phone: '+919876500002' }), event('c3', { phone: '+919876500003' })]);
    await h.runner.whenIdle();
    expect(h.routes().filter((r) => r === 'create')).toHaveLength(3);
    const before = h.crm.requests().length;

    // The CRM lost one lead's fields (edited by hand): nothing changed on our side, so nothing is sent by itself.
    await h.runner.ingest([event('c1', { tags: ['only-tags-changed'] })]);
    await h.runner.whenIdle();
    expect(h.crm.requests()).toHaveLength(before);

    const started = Date.now();
    expect(await h.runner.resync('acme', 'all', { perSecond: 10 })).toBe(3);
    await h.runner.whenIdle();
    const updates = h.crm.requests().slice(before);
    expect(updates.map((r) => r.path).sort()).toEqual(['/crm/update/L000001', '/crm/update/L000002', '/crm/update/L000003']);
    // 10 a second: the third was due 200 ms after the first.
    expect(Date.parse(updates[2]!.at) - started).toBeGreaterThanOrEqual(190);
    expect(await h.runner.contact('acme', 'c1')).toMatchObject({ state: 'synced', lastOutcome: 'updated' });
    expect((await h.runner.contact('acme', 'c1'))?.resyncAt).toBeUndefined();

    await h.runner.ingest([event('c1', { tags: ['again'] })]);
    await h.runner.whenIdle();
    expect(h.crm.requests()).toHaveLength(before + 3);
    await expect(h.runner.resync('nobody', 'all')).rejects.toThrow('unknown tenant "nobody"');
  });

  it('out-of-order and redelivered events change nothing', async () => {
    h = await RunnerHarness.start({ tenant: { quietMs: 80 } });
    h.runner.start();
    const newer = event('c1', { name: 'Newer', ts: '2024-05-06T09:14:05Z' });
    const older = event('c1', { name: 'Older', ts: '2024-05-06T09:14:03Z' });
    expect(await h.runner.ingest([newer, older, newer])).toEqual({ accepted: 3, ignored: 2, rejected: [] });
    await h.runner.whenIdle();
    expect(h.crm.leads()).toEqual([expect.objectContaining({ name: 'Newer' })]);

    // Redelivered later, after the sync: still nothing.
    expect(await h.runner.ingest([newer, older])).toEqual({ accepted: 2, ignored: 2, rejected: [] });
    await sleep(150);
    await h.runner.whenIdle();
    expect(h.routes()).toEqual(['fetch', 'create']);
    expect(h.hookLog.of('onAccepted')).toEqual([{ tenant: 'acme', accepted: 3, ignored: 2 }, { tenant: 'acme', accepted: 2, ignored: 2 }]);
  });

  it('the update-only flow: an unknown contact is settled as skipped (no lead, no dead letter, the reason kept); one the CRM knows is updated; a later change looks again', async () => {
    const updateOnly = updateOnlyMapping();
    h = await RunnerHarness.start({ tenant: { quietMs: 30, mapping: updateOnly } });
    h.runner.start();
    await h.runner.ingest([event('c1', { phone: '+14155550101' })]);
    await h.runner.whenIdle();
    expect(h.crm.leads()).toEqual([]);
    expect(h.routes()).toEqual(['fetch']);
    const skipped = await h.runner.contact('acme', 'c1');
    expect(skipped).toMatchObject({ state: 'synced', lastOutcome: 'skipped' });
    expect(skipped!.leadId).toBeUndefined();
    expect(skipped!.history[0]).toMatchObject({ outcome: 'skipped', reason: 'the CRM has no lead for this contact, and the update-only flow never creates one' });
    expect(await h.runner.status()).toMatchObject({ deadLetters: 0, leads: 0, pending: 0 });
    expect(h.hookLog.of('onSync').at(-1)).toMatchObject({ outcome: 'skipped', reason: 'the CRM has no lead for this contact, and the update-only flow never creates one' });

    // The lead is made in the CRM by someone else; the contact's next change finds it and updates it.
    const lead = await fetch(`${h.crm.url}/crm/create`, { method: 'POST', headers: { 'content-type': 'application/json', 'auth-key': CRM_KEY }, body: JSON.stringify({ phone: '+14155550101', name: 'Made in the CRM' }) });
    const { lead_id: leadId } = (await lead.json()) as { lead_id: string };
    await h.runner.ingest([event('c1', { phone: '+14155550101', name: 'Changed' })]);
    await h.runner.whenIdle();
    expect(await h.runner.contact('acme', 'c1')).toMatchObject({ leadId, lastOutcome: 'updated' });
    expect(h.crm.leads()).toEqual([expect.objectContaining({ lead_id: leadId, name: 'Changed' })]);
  });

  it('an event dated more than a day ahead is refused, so the contact keeps taking its later changes', async () => {
    h = await RunnerHarness.start({ tenant: { quietMs: 50 } });
    h.runner.start();
    const ahead = new Date(Date.now() + 36 * 3_600_000).toISOString();
    const r = await h.runner.ingest([event('c1', { name: 'Future', ts: ahead }), event('c1', { name: 'Now', ts: new Date().toISOString() })]);
    expect(r).toEqual({ accepted: 1, ignored: 0, rejected: [{ index: 0, eventId: expect.any(String), errors: [{ field: 'ts', message: expect.stringMatching(/^is 3[56] hours ahead of this server's clock/) }] }] });
    await h.runner.whenIdle();
    expect(h.crm.leads()).toEqual([expect.objectContaining({ name: 'Now' })]);
  });

  it('bad events → precise rejections by index and eventId, and nothing changed', async () => {
    h = await RunnerHarness.start({ tenant: { quietMs: 50 } });
    h.runner.start();
    const result = await h.runner.ingest([
      { eventId: 'bad-phone', contactId: 'c1', phone: 'call me' },
      event('good'),
      { eventId: 'bad-email', contactId: 'c2', phone: '+14155550100', email: 'priya@', attributes: null },
      { contactId: 'c3' },
      'not an object',
      { eventId: 'bad-tenant', tenant: 'globex', contactId: 'c4', phone: '+14155550100' },
    ]);
    expect(result).toEqual({
      accepted: 1, ignored: 0,
      rejected: [
        { index: 0, eventId: 'bad-phone', errors: [{ field: 'phone', message: '"call me" is not a phone number with a country code' }] },
        { index: 2, eventId: 'bad-email', errors: [
          { field: 'email', message: '"priya@" is not a valid email address' },
          { field: 'attributes', message: 'must be an object of scalar values, got null' },
        ] },
        { index: 3, errors: [{ field: 'phone', message: 'is required' }] },
        { index: 4, errors: [{ field: '(event)', message: 'must be a JSON object, got a string' }] },
        { index: 5, eventId: 'bad-tenant', errors: [{ field: 'tenant', message: 'unknown tenant "globex"' }] },
      ],
    });
    expect(h.hookLog.of('onRejected')).toEqual([{ count: 5 }]);

    // A batch that is all bad leaves the store untouched.
    const allBad = await h.runner.ingest([{ contactId: 'c9', phone: '12' }]);
    expect(allBad.accepted).toBe(0);
    await h.runner.whenIdle();
    for (const id of ['c1', 'c2', 'c3', 'c4', 'c9']) expect(await h.runner.contact('acme', id)).toBeUndefined();
    expect(h.crm.leads()).toHaveLength(1);
    expect(await h.runner.status()).toEqual({ pending: 0, inFlight: 0, retrying: 0, deadLetters: 0, leads: 1 });
  });

  it('a change that arrives during a sync is synced after it, once', async () => {
    h = await RunnerHarness.start({ tenant: { quietMs: 50 }, crm: {} });
    h.crm.addFault({ route: 'create', latencyMs: 300, times: 1 });
    h.runner.start();
    await h.runner.ingest([event('c1', { name: 'First' })]);
    await waitForRoute(h, 'create');
    await h.runner.ingest([event('c1', { name: 'During' })]);
    expect(await h.runner.status()).toMatchObject({ inFlight: 1 });
    await h.runner.whenIdle();
    expect(h.routes()).toEqual(['fetch', 'create', 'update']);
    expect(h.crm.leads()).toEqual([expect.objectContaining({ name: 'During' })]);
  });

  it('the tenant path scopes events, and backfill (immediate) skips the quiet window', async () => {
    h = await RunnerHarness.start({ tenant: { quietMs: 60_000 } });
    h.runner.start();
    const r = await h.runner.ingest([event('c1', { tenant: 'other' }), event('c2')], { tenant: 'acme', immediate: true });
    expect(r.rejected).toEqual([{ index: 0, eventId: expect.any(String), errors: [{ field: 'tenant', message: 'unknown tenant "other"' }] }]);
    expect((await h.runner.ingest([event('c3')], { tenant: 'nope' })).rejected).toEqual([
      { index: 0, eventId: expect.any(String), errors: [{ field: 'tenant', message: 'unknown tenant "nope"' }] },
    ]);
    await h.runner.whenIdle();
    expect(h.crm.leads()).toEqual([expect.objectContaining({ email: 'c2@example.com' })]);
  });
});

describe('Runner: claims', () => {
  it('attempts that settle together free their slots for one claim, not one claim each', async () => {
    h = await RunnerHarness.start({ tenant: { concurrency: 4 } });
    h.runner.start();
    const ids = Array.from({ length: 8 }, (_, i) => `c${i}`);
    await h.runner.ingest(ids.map((id) => event(id)), { immediate: true });
    await h.runner.whenIdle();
    // The same state again: every attempt ends as unchanged without a CRM call, so the four in flight settle in one turn.
    const claimed: number[] = [];
    const claimDue = h.store.claimDue.bind(h.store);
    h.store.claimDue = async (tenant, opts) => {
      const claims = await claimDue(tenant, opts);
      if (claims.length > 0) claimed.push(claims.length);
      return claims;
    };
    await h.runner.ingest(ids.map((id) => event(id)), { immediate: true });
    await h.runner.whenIdle();
    expect(h.hookLog.of('onSync').slice(8).map((e) => e.outcome)).toEqual(Array(8).fill('unchanged'));
    expect(claimed).toEqual([4, 4]);
  });
});

describe('Runner against the reference CRM: a stale lead id', () => {
  it('two contacts of one person (one phone, two contact ids) synced at once become one lead, not two', async () => {
    h = await RunnerHarness.start({ tenant: { quietMs: 50, concurrency: 4 } });
    // Slow enough that without the identity hold both fetches would find nothing before either create lands.
    h.crm.addFault({ route: 'create', latencyMs: 400, times: 1 });
    h.runner.start();
    await h.runner.ingest([event('whatsapp-1', { email: undefined }), event('webform-7', { email: 'priya@example.com' })]);
    await h.runner.whenIdle();
    expect(h.crm.leads()).toHaveLength(1);
    const [a, b] = await Promise.all([h.runner.contact('acme', 'whatsapp-1'), h.runner.contact('acme', 'webform-7')]);
    expect(a!.leadId).toBe(b!.leadId);
    expect([a!.lastOutcome, b!.lastOutcome].sort()).toEqual(['created', 'updated']);
  });

  it('a sync that finds its person held is deferred: it frees its slot, so another person\'s contact is synced meanwhile', async () => {
    h = await RunnerHarness.start({ tenant: { quietMs: 50, concurrency: 2 } });
    // The first create is slow: whichever of the person's two contacts holds the phone keeps it this long.
    h.crm.addFault({ route: 'create', latencyMs: 1500, times: 1 });
    h.runner.start();
    await h.runner.ingest([event('whatsapp-1', { email: undefined }), event('webform-7', { email: 'priya@example.com' })]);
    await sleep(20);
    await h.runner.ingest([event('other-person', { phone: '+91 98123 45678' })]);
    // Both slots went to the person's contacts; the one that found the phone held gave its slot back.
    await waitFor('the other person\'s sync', async () => (await h.runner.contact('acme', 'other-person'))?.lastOutcome === 'created');
    const person = await Promise.all([h.runner.contact('acme', 'whatsapp-1'), h.runner.contact('acme', 'webform-7')]);
    expect(person.map((c) => c!.lastOutcome)).toEqual([undefined, undefined]);
    expect(h.hookLog.of('onDeferred').length).toBeGreaterThan(0);
    await h.runner.whenIdle();
    expect(h.crm.leads()).toHaveLength(2);
    const [a, b] = await Promise.all([h.runner.contact('acme', 'whatsapp-1'), h.runner.contact('acme', 'webform-7')]);
    expect(a!.leadId).toBe(b!.leadId);
    expect([a!.lastOutcome, b!.lastOutcome].sort()).toEqual(['created', 'updated']);
    // A deferral is not an attempt: each of the person's contacts has one in its history.
    expect([a!.attempts, b!.attempts]).toEqual([1, 1]);
  });

  it('a create that timed out keeps holding the person: the other contact waits, and finds the lead it made (one lead)', async () => {
    h = await RunnerHarness.start({
      tenant: { quietMs: 50, concurrency: 4, mapping: seedContract(300) },
      runner: { retry: { baseMs: 4000, maxMs: 4000, budgetMs: 60_000 } },
    });
    // The first create is answered after the 300 ms timeout, and lands: a lead the runner does not hear of.
    h.crm.addFault({ route: 'create', latencyMs: 1000, times: 1 });
    h.runner.start();
    await h.runner.ingest([event('whatsapp-1', { email: undefined })]);
    await waitFor('the first create', () => h.routes().includes('create'));
    await h.runner.ingest([event('webform-7', { email: 'priya@example.com' })]);
    await waitFor('the second contact\'s sync', async () => (await h.runner.contact('acme', 'webform-7'))?.lastOutcome !== undefined, 8000);
    expect(h.crm.leads()).toHaveLength(1);
    expect((await h.runner.contact('acme', 'webform-7'))).toMatchObject({ lastOutcome: 'updated', leadId: h.crm.leads()[0]!.lead_id });
  });

  it('update-only: the CRM no longer has the stored lead and finds none → skipped, the lead id forgotten, and the next event looks again', async () => {
    h = await syncedOnceThenStopped();

    const updateOnly = updateOnlyMapping();
    const fresh = await startReferenceCrm({ auth: { style: 'auth-key', key: CRM_KEY }, leadIdPrefix: 'N' });
    const runner = new Runner({ tenants: [h.tenant({ baseUrl: fresh.url, mapping: updateOnly })], store: h.store, engine: h.engine });
    try {
      runner.start();
      await runner.ingest([event('c1', { name: 'Moved' })]);
      await runner.whenIdle();
      expect(fresh.requests().map((r) => [r.route, r.status])).toEqual([['update', 404], ['fetch', 404]]);
      const skipped = await runner.contact('acme', 'c1');
      expect(skipped).toMatchObject({ state: 'synced', lastOutcome: 'skipped' });
      expect(skipped!.leadId).toBeUndefined();
      expect(skipped!.history[0]).toMatchObject({ outcome: 'skipped', warnings: ['lead "L000001" no longer exists in the CRM; matched again'] });
      expect((await runner.status()).leads).toBe(0);
      // The same state again is not "unchanged": there is no lead it could be unchanged in. The flow looks again.
      await runner.ingest([event('c1', { name: 'Moved' })]);
      await runner.whenIdle();
      expect(fresh.requests().map((r) => r.route)).toEqual(['update', 'fetch', 'fetch']);
    } finally {
      await runner.stop();
      await fresh.close();
    }
  });

  it('the CRM no longer has the stored lead → matched again, and the new id is stored and used', async () => {
    h = await syncedOnceThenStopped();

    // The customer moved to a CRM that never saw L000001 (as if the lead was deleted).
    const fresh = await startReferenceCrm({ auth: { style: 'auth-key', key: CRM_KEY }, leadIdPrefix: 'N' });
    const runner = new Runner({ tenants: [h.tenant({ baseUrl: fresh.url })], store: h.store, engine: h.engine });
    try {
      runner.start();
      await runner.ingest([event('c1', { name: 'Moved' })]);
      await runner.whenIdle();
      expect(fresh.requests().map((r) => [r.route, r.status])).toEqual([['update', 404], ['fetch', 404], ['create', 200]]);
      expect(await runner.contact('acme', 'c1')).toMatchObject({ leadId: 'N000001', lastOutcome: 'created' });
      // What the engine noticed is in the attempt's history (status, the contact API), not dropped.
      expect((await runner.contact('acme', 'c1'))!.history[0]).toMatchObject({ outcome: 'created', warnings: ['lead "L000001" no longer exists in the CRM; matched again'] });
      await runner.ingest([event('c1', { name: 'Moved again' })]);
      await runner.whenIdle();
      expect(fresh.requests().at(-1)).toMatchObject({ route: 'update', path: '/crm/update/N000001', status: 200 });
      expect(fresh.leads()).toEqual([expect.objectContaining({ lead_id: 'N000001', name: 'Moved again' })]);
    } finally {
      await runner.stop();
      await fresh.close();
    }
  });
});

describe('stopping', () => {
  it('an attempt still running when the stop stops waiting for it is abandoned: what it then fails at is not reported', async () => {
    h = await RunnerHarness.start({ tenant: { quietMs: 50 } });
    h.crm.addFault({ route: 'fetch', latencyMs: 600, times: 1 });
    h.runner.start();
    await h.runner.ingest([event('c1')]);
    await waitForRoute(h, 'fetch');
    await h.runner.stop({ drainMs: 0, settleMs: 50 });
    await h.store.close(); // as the daemon does next: the attempt's fetch answers after this
    await sleep(900);
    expect(h.hookLog.of('onError')).toEqual([]);
    h.open(); // close() stops and closes again
  });
});

async function waitForRoute(h: RunnerHarness, route: string): Promise<void> {
  const until = Date.now() + 5000;
  while (!h.routes().includes(route)) {
    if (Date.now() > until) throw new Error(`no ${route} request arrived`);
    await sleep(5);
  }
}
