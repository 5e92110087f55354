import { compileMapping } from '@crm-sync/core';
import { seedMappingText } from './seed-mapping';
import { event, RunnerHarness, waitFor } from './runner.fixtures';

let h: RunnerHarness;
afterEach(async () => { await h?.close(); });

/** The seed mapping with the name upper-cased in the payload: another mapping text, so another hash. */
const shouting = () => compileMapping(seedMappingText().replace('"name": contact.name', '"name": $uppercase(contact.name)'), { file: 'shouting.yaml' });

describe('Runner.reconfigure: tenants added, changed and removed while it runs', () => {
  it('a changed mapping: the sync in flight finishes with the old one, the next ones use the new one', async () => {
    h = await RunnerHarness.start({ tenant: { quietMs: 50 } });
    h.runner.start();
    await h.runner.ingest([event('c1', { name: 'Priya' })]);
    await h.runner.whenIdle();

    h.crm.addFault({ route: 'update', latencyMs: 400, times: 1 });
    await h.runner.ingest([event('c1', { name: 'Priya S' })]);
    await waitFor('the update in flight', () => h.crm.requests().some((r) => r.route === 'update'), 3000);
    const changes = await h.runner.reconfigure([h.tenant({ quietMs: 50, mapping: shouting() })], { drainMs: 5000 });
    expect(changes).toEqual({ added: [], removed: [], changed: ['acme'], mappingChanged: ['acme'] });
    // reconfigure waited for the old dispatcher's attempt: it ended with the old mapping.
    expect(h.crm.leads()[0]).toMatchObject({ name: 'Priya S' });

    await h.runner.ingest([event('c1', { name: 'Priya Sharma' })]);
    await h.runner.whenIdle();
    expect(h.crm.leads()).toEqual([expect.objectContaining({ name: 'PRIYA SHARMA' })]);
    // The same settings again: nothing to do. Another window only: changed, its mapping not.
    expect(await h.runner.reconfigure([h.tenant({ quietMs: 50, mapping: shouting() })])).toEqual({ added: [], removed: [], changed: [], mappingChanged: [] });
    expect(await h.runner.reconfigure([h.tenant({ quietMs: 60, mapping: shouting() })])).toEqual({ added: [], removed: [], changed: ['acme'], mappingChanged: [] });
  });

  it('a new retry policy applies from the next failure on (the tenant is not restarted for it)', async () => {
    h = await RunnerHarness.start({ tenant: { quietMs: 50 }, runner: { retry: { baseMs: 50, maxMs: 50, budgetMs: 60_000 } } });
    h.crm.addFault({ route: 'create', status: 503 });
    h.runner.start();
    await h.runner.ingest([event('c1')]);
    await waitFor('a retry', () => h.hookLog.of('onRetry').length >= 2);
    expect(await h.runner.reconfigure([h.tenant({ quietMs: 50 })], { retry: { baseMs: 50, maxMs: 50, budgetMs: 0 } }))
      .toEqual({ added: [], removed: [], changed: [], mappingChanged: [] });
    await h.runner.whenIdle();
    expect(await h.runner.contact('acme', 'c1')).toMatchObject({ state: 'dead-letter' });
    expect(h.hookLog.of('onDeadLetter')).toEqual([expect.objectContaining({ contactId: 'c1', cause: 'retries-exhausted' })]);
  });

  it('a tenant added takes events at once; one removed refuses them, and its pending contacts resume when it is back', async () => {
    h = await RunnerHarness.start({ tenant: { quietMs: 50 } });
    h.runner.start();
    const globex = h.tenant({ name: 'globex', quietMs: 300 });
    expect(await h.runner.reconfigure([h.tenant({ quietMs: 50 }), globex])).toEqual({ added: ['globex'], removed: [], changed: [], mappingChanged: [] });
    expect(h.runner.tenantList()).toEqual(['acme', 'globex']);
    expect(await h.runner.ingest([event('g1', { tenant: 'globex', phone: '+91 98765 43299' })])).toMatchObject({ accepted: 1 });

    // Removed while g1 is still pending (quiet 300 ms): nothing is sent for it.
    expect(await h.runner.reconfigure([h.tenant({ quietMs: 50 })])).toEqual({ added: [], removed: ['globex'], changed: [], mappingChanged: [] });
    expect(await h.runner.ingest([event('g2', { tenant: 'globex' })])).toMatchObject({ accepted: 0, rejected: [{ errors: [{ field: 'tenant' }] }] });
    await new Promise((r) => setTimeout(r, 500));
    expect(h.crm.leads()).toEqual([]);
    expect(await h.runner.contact('globex', 'g1')).toMatchObject({ state: 'pending' });

    await h.runner.reconfigure([h.tenant({ quietMs: 50 }), globex]);
    await waitFor('g1 synced', async () => (await h.runner.contact('globex', 'g1'))?.state === 'synced', 3000);
    expect(h.crm.leads()).toEqual([expect.objectContaining({ phone: '+919876543299' })]);
    await expect(h.runner.reconfigure([])).rejects.toThrow('Runner needs at least one tenant');
  });
});
