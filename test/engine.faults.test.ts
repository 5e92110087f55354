import { inspect } from 'node:util';
import { failureDetails, PermanentError, RetryableError, SyncError, type SyncResult } from '@crm-sync/core';
import type { Fault, ReferenceCrmOptions } from '@crm-sync/testkit';
import { DEFAULT, SECRET, compile, contact, startHarness, type Combination, type Harness } from './engine.fixtures';

const harnesses: Harness[] = [];
afterEach(async () => { await Promise.all(harnesses.splice(0).map((h) => h.close())); });

async function start(c: Combination = DEFAULT, crm: ReferenceCrmOptions = {}, secret?: string): Promise<Harness> {
  const h = await startHarness(c, crm, secret);
  harnesses.push(h);
  return h;
}

async function syncError(h: Harness, c: Combination = DEFAULT, opts: { knownLeadId?: string; timeoutMs?: number } = {}): Promise<SyncError> {
  const mapping = compile(c, opts.timeoutMs ? { timeoutMs: opts.timeoutMs } : {});
  const err = await h.engine.sync(mapping, contact(), { baseUrl: h.crm.url, knownLeadId: opts.knownLeadId }).then(
    (r: SyncResult) => new Error(`expected a failure, got ${r.action}`), (e: unknown) => e);
  if (!(err instanceof SyncError)) throw err;
  return err;
}

const routes = (h: Harness) => h.crm.requests().map((r) => r.route);

describe('matching', () => {
  it('fetch 404 (not found) → create', async () => {
    const h = await start();
    const r = await h.engine.sync(compile(DEFAULT), contact(), { baseUrl: h.crm.url });
    expect(r).toMatchObject({ action: 'created', leadId: 'L000001' });
    expect(r.calls.map((c) => [c.step, c.method, c.status])).toEqual([['fetch', 'GET', 404], ['create', 'POST', 200]]);
  });

  it('fetch finds the lead → update it, no second lead', async () => {
    const h = await start();
    await h.engine.sync(compile(DEFAULT), contact(), { baseUrl: h.crm.url });
    const r = await h.engine.sync(compile(DEFAULT), contact({ name: 'Priya S.' }), { baseUrl: h.crm.url });
    expect(r).toMatchObject({ action: 'updated', leadId: 'L000001' });
    expect(h.crm.leads()).toEqual([expect.objectContaining({ name: 'Priya S.' })]);
  });

  it.each([
    ['an unknown id, nobody matches → create', false, 'created'],
    ['an unknown id, the contact\'s lead exists → fetch finds it → update', true, 'updated'],
  ])('stale stored id: %s', async (_label, existing, action) => {
    const h = await start();
    if (existing) await h.engine.sync(compile(DEFAULT), contact(), { baseUrl: h.crm.url });
    const r = await h.engine.sync(compile(DEFAULT), contact({ name: 'Priya S.' }), { baseUrl: h.crm.url, knownLeadId: 'L999999' });
    expect(r).toMatchObject({ action, leadId: 'L000001', forgotLeadId: 'L999999' });
    expect(r.calls.map((c) => [c.step, c.status])).toEqual([['update', 404], ['fetch', existing ? 200 : 404], [existing ? 'update' : 'create', 200]]);
    expect(h.crm.leads()).toEqual([expect.objectContaining({ lead_id: 'L000001', name: 'Priya S.' })]);
  });

  it('a lead id with "/" (ld/000001) stays one path segment and updates the right lead', async () => {
    const h = await start(DEFAULT, { leadIdPrefix: 'ld/' });
    const created = await h.engine.sync(compile(DEFAULT), contact({ phone: '+14155550100', email: 'a@example.com' }), { baseUrl: h.crm.url });
    const other = await h.engine.sync(compile(DEFAULT), contact(), { baseUrl: h.crm.url });
    expect([created.leadId, other.leadId]).toEqual(['ld/000001', 'ld/000002']);
    const r = await h.engine.sync(compile(DEFAULT), contact({ name: 'Second' }), { baseUrl: h.crm.url, knownLeadId: 'ld/000002' });
    expect(r).toMatchObject({ action: 'updated', leadId: 'ld/000002' });
    expect(h.crm.requests().at(-1)).toMatchObject({ route: 'update', path: '/crm/update/ld%2F000002', status: 200 });
    expect(h.crm.leads().map((l) => [l.lead_id, l.name])).toEqual([['ld/000001', 'Priya Sharma'], ['ld/000002', 'Second']]);
  });
});

describe('form bodies', () => {
  it('values with +, &, = and unicode arrive intact', async () => {
    const form: Combination = { ...DEFAULT, encoding: 'form' };
    const h = await start(form);
    const tricky = { name: 'A+B & C=D प्रिया', attributes: { crm_code: 'x+y&z=1 100%', note: 'a b+c' } };
    await h.engine.sync(compile(form), contact(tricky), { baseUrl: h.crm.url });
    expect(h.crm.leads()).toEqual([expect.objectContaining({ name: tricky.name, custom_fields: tricky.attributes })]);
    expect(h.crm.requests().at(-1)!.body).toEqual({ phone: '+919876543210', name: tricky.name, email: 'priya@example.com', custom_fields: tricky.attributes });
  });
});

describe('failures', () => {
  it('fetch 5xx → RetryableError, and no create request reaches the CRM', async () => {
    const h = await start();
    h.crm.addFault({ route: 'fetch', status: 503 });
    const err = await syncError(h);
    expect(err).toBeInstanceOf(RetryableError);
    expect(err).toMatchObject({ code: 'ERR_CRM_UNAVAILABLE', context: { step: 'fetch', status: 503, tenant: 'acme', contactId: 'c_0042', reason: 'injected' } });
    expect(routes(h)).toEqual(['fetch']);
    expect(h.crm.leads()).toEqual([]);
    expect(failureDetails(err)?.calls.map((c) => [c.step, c.status])).toEqual([['fetch', 503]]);
  });

  it('fetch 404 without the contract\'s "Not Found" body (a wrong URL) → failure, not create', async () => {
    const h = await start();
    h.crm.addFault({ route: 'fetch', status: 404 });
    const err = await syncError(h);
    expect(err).toMatchObject({ code: 'ERR_CRM_REJECTED', retryable: false });
    expect(routes(h)).toEqual(['fetch']);
  });

  it('200 with a failure body → PermanentError carrying the CRM\'s reason', async () => {
    const h = await start();
    h.crm.addFault({ route: 'create', failInBody: true });
    const err = await syncError(h);
    expect(err).toBeInstanceOf(PermanentError);
    expect(err).toMatchObject({ code: 'ERR_CRM_REJECTED', context: { step: 'create', status: 200, reason: 'injected' } });
    expect(h.crm.leads()).toEqual([]);
  });

  it('401 (wrong key) → permanent ERR_CRM_AUTH', async () => {
    const h = await start(DEFAULT, {}, 'Wrong-Key-Zz81');
    const err = await syncError(h);
    expect(err).toBeInstanceOf(PermanentError);
    expect(err).toMatchObject({ code: 'ERR_CRM_AUTH', context: { step: 'fetch', status: 401 } });
    expect(routes(h)).toEqual(['fetch']);
  });

  it('a hung request → ERR_TIMEOUT within the mapping\'s timeoutMs', async () => {
    const h = await start();
    h.crm.addFault({ route: 'fetch', hang: true });
    const started = Date.now();
    const err = await syncError(h, DEFAULT, { timeoutMs: 200 });
    expect(err).toBeInstanceOf(RetryableError);
    expect(err).toMatchObject({ code: 'ERR_TIMEOUT', context: { step: 'fetch' } });
    expect(Date.now() - started).toBeLessThan(2000);
    expect(h.crm.leads()).toEqual([]);
  });

  it.each<[string, Fault]>([
    ['a connection reset on fetch', { route: 'fetch', reset: true }],
    ['a lost create answer (reset after commit)', { route: 'create', resetAfterCommit: true }],
  ])('%s → retryable ERR_NETWORK', async (_label, fault) => {
    const h = await start();
    h.crm.addFault(fault);
    const err = await syncError(h);
    expect(err).toBeInstanceOf(RetryableError);
    expect(err.code).toBe('ERR_NETWORK');
  });

  it('429 with Retry-After → RetryableError with retryAfterMs', async () => {
    const h = await start();
    h.crm.addFault({ route: 'fetch', status: 429, retryAfterSec: 7 });
    const err = await syncError(h);
    expect(err).toBeInstanceOf(RetryableError);
    expect(err).toMatchObject({ code: 'ERR_RATE_LIMITED', retryAfterMs: 7000, context: { status: 429 } });
  });
});

describe('secrets', () => {
  // The body-secret style puts the key in the query string of a GET fetch and in every body: the hardest to keep out.
  const leaky: Combination = { flow: 'fetch-create-update', auth: 'body-secret', encoding: 'form' };
  const spellings = [SECRET, encodeURIComponent(SECRET), new URLSearchParams({ s: SECRET }).toString().slice(2)];

  it.each<[string, Fault | undefined, string | undefined]>([
    ['fetch 503', { route: 'fetch', status: 503 }, undefined],
    ['create 200 with a failure body', { route: 'create', failInBody: true }, undefined],
    ['a reset', { route: 'fetch', reset: true }, undefined],
    ['a timeout', { route: 'fetch', hang: true }, undefined],
    ['update 400', { route: 'update', status: 400 }, 'L000001'],
    ['a stale id whose re-match fails', { route: 'fetch', status: 500 }, 'L404'],
  ])('are absent from the error, describe(), calls and failureDetails after %s', async (_label, fault, knownLeadId) => {
    const h = await start(leaky);
    if (knownLeadId === 'L000001') await h.engine.sync(compile(leaky), contact(), { baseUrl: h.crm.url });
    if (fault) h.crm.addFault(fault);
    const err = await syncError(h, leaky, { knownLeadId, timeoutMs: 200 });
    const details = failureDetails(err);
    expect(details?.calls.length).toBeGreaterThan(0);
    // inspect() is what a logger falls back to: it walks the cause chain (got's error and its options) too.
    const seen = [err.message, err.describe(), JSON.stringify(err), JSON.stringify(details), inspect(err, { depth: 8 })].join('\n');
    if (details!.calls.some((c) => c.step === 'fetch')) expect(seen).toContain('secret=***');
    for (const s of spellings) expect(seen).not.toContain(s);
  });

  it('are absent from a successful result', async () => {
    const h = await start(leaky);
    const r = await h.engine.sync(compile(leaky), contact(), { baseUrl: h.crm.url });
    const seen = JSON.stringify(r);
    expect(r.calls[0]!.url).toContain('secret=***');
    for (const s of spellings) expect(seen).not.toContain(s);
  });
});
