import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { compileMapping } from '@crm-sync/core';
import { Runner, type LeadCheck } from '@crm-sync/runner';
import { CRM_KEY, event, RunnerHarness, waitFor } from './runner.fixtures';

let h: RunnerHarness;
afterEach(async () => { await h?.close(); });

/** Contacts c1..cN with their own phones and emails, so each is its own lead. */
const contacts = (n: number) => Array.from({ length: n }, (_, i) => event(`c${i + 1}`, { phone: `+91 98765 4321${i}` }));
const leadOf = async (id: string) => (await h.runner.contact('acme', id))!.leadId!;

/** A harness whose contacts c1..cN are synced. */
async function syncedContacts(n: number): Promise<void> {
  h = await RunnerHarness.start({ tenant: { quietMs: 50 } });
  h.runner.start();
  await h.runner.ingest(contacts(n));
  await h.runner.whenIdle();
}

async function reconcile(opts: Parameters<RunnerHarness['runner']['reconcile']>[1] = {}) {
  const checks: LeadCheck[] = [];
  const report = await h.runner.reconcile('acme', { perSecond: 200, ...opts, onCheck: (c) => checks.push(c) });
  const byContact = Object.fromEntries(checks.map((c) => [c.contactId, c]));
  return { report, byContact };
}

describe('reconcile: the lead store compared with the CRM (reference CRM over HTTP)', () => {
  it('finds leads changed, deleted or replaced behind its back; repair sends them again, and they match after', async () => {
    await syncedContacts(4);
    expect(h.crm.leads()).toHaveLength(4);

    const clean = await reconcile();
    expect(clean.report).toMatchObject({ tenant: 'acme', checked: 4, complete: true, repaired: 0, counts: { match: 4, differs: 0, missing: 0, 'other-lead': 0, failed: 0 } });
    // Reads only: one fetch per contact, nothing written.
    expect(h.routes().slice(8)).toEqual(['fetch', 'fetch', 'fetch', 'fetch']);

    const [l1, l2, l3] = [await leadOf('c1'), await leadOf('c2'), await leadOf('c3')];
    h.crm.editLead(l1, { custom_fields: { city: 'Pune' } }); // an update lost, or overwritten in the CRM
    h.crm.deleteLead(l2);
    h.crm.deleteLead(l3);
    // Someone else made a lead with c3's phone: the CRM's fetch finds that one now.
    const made = await fetch(`${h.crm.url}/crm/create`, { method: 'POST', headers: { 'auth-key': CRM_KEY, 'content-type': 'application/json' }, body: JSON.stringify({ phone: '+919876543212', name: 'Walk-in' }) });
    const other = (await made.json()) as { lead_id: string };

    const found = await reconcile({ repair: true });
    expect(found.report).toMatchObject({ checked: 4, repaired: 2, counts: { match: 1, differs: 1, missing: 1, 'other-lead': 1 } });
    expect(found.byContact.c1).toEqual({ contactId: 'c1', leadId: l1, state: 'differs', differences: [{ path: 'custom_fields.city', sent: 'Mumbai', crm: 'Pune' }] });
    expect(found.byContact.c2).toEqual({ contactId: 'c2', leadId: l2, state: 'missing' });
    expect(found.byContact.c3).toEqual({ contactId: 'c3', leadId: l3, state: 'other-lead', crmLeadId: other.lead_id });
    expect(found.byContact.c4).toMatchObject({ state: 'match' });

    // The runner sends c1 and c2 again: c1's lead is updated back, c2's (gone) is matched again and created anew.
    await h.runner.whenIdle();
    expect(h.crm.leads().find((l) => l.lead_id === l1)?.custom_fields).toEqual({ city: 'Mumbai' });
    const c2Lead = await leadOf('c2');
    expect(c2Lead).not.toBe(l2);
    expect(h.crm.leads().find((l) => l.lead_id === c2Lead)).toMatchObject({ phone: '+919876543211', name: 'Priya Sharma' });

    const after = await reconcile();
    expect(after.report.counts).toMatchObject({ match: 3, 'other-lead': 1, differs: 0, missing: 0 });
  });

  it('named contacts only; one not synced says so; a read that fails is reported, not fatal', async () => {
    await syncedContacts(2);
    h.crm.addFault({ route: 'fetch', status: 503, times: 1 });
    const { report, byContact } = await reconcile({ contactIds: ['c1', 'nobody', 'c2'], concurrency: 1 });
    expect(report).toMatchObject({ checked: 3, counts: { failed: 1, 'not-synced': 1, match: 1 } });
    expect(byContact.c1).toMatchObject({ state: 'failed', error: { code: 'ERR_CRM_UNAVAILABLE' } });
    expect(byContact.nobody).toEqual({ contactId: 'nobody', state: 'not-synced' });
    expect(byContact.c2).toMatchObject({ state: 'match' });
  });

  it('a contact that changes while its lead is read is not judged', async () => {
    await syncedContacts(1);
    h.crm.addFault({ route: 'fetch', latencyMs: 1000, times: 1 });
    const fetches = h.routes().length;
    const reading = reconcile();
    // The CRM has the read (it logs a request as it arrives, status 0 until answered): change the contact meanwhile.
    await waitFor('the read on its way', () => h.crm.requests().slice(fetches).some((r) => r.route === 'fetch' && r.status === 0));
    await h.runner.ingest([event('c1', { phone: '+91 98765 43210', name: 'Renamed' })]);
    const { byContact } = await reading;
    expect(byContact.c1).toMatchObject({ state: 'changed' });
  });

  it('paces its reads and stops at the limit', async () => {
    await syncedContacts(5);
    const started = Date.now();
    const { report } = await reconcile({ perSecond: 20, limit: 4 });
    // Four reads started 50 ms apart: at least 150 ms from the first to the last.
    expect(Date.now() - started).toBeGreaterThanOrEqual(145);
    expect(report).toMatchObject({ checked: 4, complete: false });
    await expect(h.runner.reconcile('acme', { perSecond: 0 })).rejects.toThrow(/perSecond must be a positive number/);
    await expect(h.runner.reconcile('nobody')).rejects.toThrow(/unknown tenant "nobody"/);
  });

  it('refuses a tenant whose mapping has no fetch endpoint, before reading anything', async () => {
    h = await RunnerHarness.start();
    const noFetch = compileMapping(readFileSync(join(__dirname, '..', 'mappings', 'bearer-no-fetch.yaml'), 'utf8'), { file: 'bearer-no-fetch.yaml' });
    const runner = new Runner({ tenants: [h.tenant({ mapping: noFetch })], store: h.store, engine: h.engine });
    await expect(runner.reconcile('acme')).rejects.toThrow('tenant acme: the mapping "bearer-no-fetch" has no fetch endpoint, so its leads cannot be read back');
    expect(h.crm.requests()).toEqual([]);
  });
});
