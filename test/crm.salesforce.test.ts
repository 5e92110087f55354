import { startSalesforceEmulator, type Emulator, type SalesforceEmulatorOptions, type SalesforceLead } from '@crm-sync/testkit';
import { leadDifferences } from '@crm-sync/core';
import { startCrm, type CrmHarness } from './crm.harness';

// mappings/salesforce.yaml against the Salesforce emulator over real HTTP.

const PRIYA = { contactId: 'c1', phone: '+91 98765 43210', name: 'Priya Sharma', email: 'priya@example.com', attributes: { city: 'Mumbai', utm_campaign: 'diwali' } };

let sf: Emulator<SalesforceLead>;
let crm: CrmHarness;
async function setup(opts: SalesforceEmulatorOptions = {}) {
  ({ emulator: sf, crm } = await startCrm('salesforce', startSalesforceEmulator(opts)));
}

it('reconcile reads the Lead back by SOQL with every payload field: equal after a sync, a field changed in Salesforce differs', async () => {
  await setup();
  const created = await crm.sync(PRIYA);
  const reading = await crm.readLead(PRIYA, created.leadId!);
  expect(reading).toMatchObject({ found: true, leadId: created.leadId });
  expect(leadDifferences(created.payload, reading.found ? reading.fields : undefined)).toEqual([]);

  await fetch(`${sf.url}/services/data/v59.0/sobjects/Lead/${created.leadId}`, {
    method: 'PATCH', headers: { authorization: `Bearer ${sf.token}`, 'content-type': 'application/json' }, body: JSON.stringify({ Company: 'Acme', City: null }),
  });
  const after = await crm.readLead(PRIYA, created.leadId!);
  expect(leadDifferences(created.payload, after.found ? after.fields : undefined)).toEqual([
    { path: 'Company', sent: '[not provided]', crm: 'Acme' },
    { path: 'City', sent: 'Mumbai', crm: null },
  ]);
});

it('creates (201), updates by the stored id with PATCH 204 (clearing a removed field), and finds the lead by SOQL for a new contact', async () => {
  await setup();
  const created = await crm.sync(PRIYA);
  expect(created).toMatchObject({ action: 'created', leadId: sf.records()[0]!.Id });
  expect(sf.records()[0]).toMatchObject({ FirstName: 'Priya', LastName: 'Sharma', Company: '[not provided]', Email: 'priya@example.com', City: 'Mumbai', UTM_Campaign__c: 'diwali' });
  expect(created.rateLimit).toEqual({ remaining: 15_000 - 3 });

  const updated = await crm.sync({ ...PRIYA, attributes: {} }, { knownLeadId: created.leadId, previousPayload: created.payload });
  expect(updated).toMatchObject({ action: 'updated', leadId: created.leadId });
  expect(updated.calls.map((c) => `${c.method} ${c.step} ${c.status}`)).toEqual(['PATCH update 204']);
  expect(sf.records()[0]!.City).toBeUndefined();

  const other = await crm.sync({ contactId: 'c2', phone: '+14155550100', email: 'PRIYA@example.com', name: 'Priya' });
  expect(other).toMatchObject({ action: 'updated', leadId: created.leadId });
  expect(sf.records()).toHaveLength(1);
});

it('escapes an email with a quote inside the SOQL literal, so the query is valid and finds the lead', async () => {
  await setup();
  const obrien = { contactId: 'c1', phone: '+353861234567', name: "Seán O'Brien", email: "o'brien@example.com" };
  const created = await crm.sync(obrien);
  expect(created.action).toBe('created');
  const again = await crm.sync({ ...obrien, contactId: 'c2', phone: '+353869999999' });
  expect(again).toMatchObject({ action: 'updated', leadId: created.leadId });
  const queries = sf.requests().filter((r) => r.route === 'fetch').map((r) => [r.status, r.query.q]);
  expect(queries[0]).toEqual([200, "SELECT Id, FirstName, LastName, Company, Email, Phone, City, UTM_Campaign__c FROM Lead WHERE email = 'o\\'brien@example.com' ORDER BY CreatedDate ASC LIMIT 10"]);
  expect(queries.every(([status]) => status === 200)).toBe(true);
  expect(sf.records()).toHaveLength(1);
});

it('stale id: the stored lead was deleted → 404 ENTITY_IS_DELETED → query again → create a new lead', async () => {
  await setup();
  const created = await crm.sync(PRIYA);
  sf.deleteRecord(created.leadId!);
  const again = await crm.sync(PRIYA, { knownLeadId: created.leadId });
  expect(again).toMatchObject({ action: 'created', forgotLeadId: created.leadId });
  expect(again.calls.map((c) => `${c.step} ${c.status}`)).toEqual(['update 404', 'fetch 200', 'fetch 200', 'create 201']);
  expect(sf.records().map((l) => l.Id)).toEqual([again.leadId]);
});

it('a missing LastName is a permanent failure with Salesforce\'s error code as the reason', async () => {
  await setup();
  const err = await crm.syncFails({ contactId: 'c1', phone: '+919876543210' });
  expect(err).toMatchObject({ code: 'ERR_CRM_REJECTED', retryable: false, context: { step: 'create', status: 400 } });
  expect(err.context.reason).toBe('REQUIRED_FIELD_MISSING: Required fields are missing: [LastName]');
});

it('429 with Retry-After → RetryableError with retryAfterMs; a used-up org allowance (403 REQUEST_LIMIT_EXCEEDED) is retryable too', async () => {
  await setup({ apiLimit: 4 });
  sf.addFault({ route: 'fetch', status: 429, retryAfterSec: 7, times: 1 });
  const limited = await crm.syncFails(PRIYA);
  expect(limited).toMatchObject({ code: 'ERR_RATE_LIMITED', retryable: true, retryAfterMs: 7_000 });

  const created = await crm.sync(PRIYA);
  expect(created.rateLimit).toEqual({ remaining: 1 });
  await crm.sync(PRIYA, { knownLeadId: created.leadId });
  const exhausted = await crm.syncFails(PRIYA, { knownLeadId: created.leadId });
  expect(exhausted).toMatchObject({ code: 'ERR_CRM_UNAVAILABLE', retryable: true, context: { status: 403, reason: 'REQUEST_LIMIT_EXCEEDED: TotalRequests Limit exceeded.' } });
});
