import { startZohoEmulator, type Emulator, type ZohoLead } from '@crm-sync/testkit';
import { crmHarness, startCrm, type CrmHarness } from './crm.harness';

// mappings/zoho.yaml against the Zoho CRM emulator over real HTTP.

const PRIYA = { contactId: 'c1', phone: '+91 98765 43210', name: 'Priya Sharma', email: 'priya@example.com', attributes: { city: 'Mumbai' } };

let zoho: Emulator<ZohoLead>;
let crm: CrmHarness;
beforeEach(async () => {
  ({ emulator: zoho, crm } = await startCrm('zoho', startZohoEmulator()));
});

it('upserts a new lead, updates it on the next sync (clearing a removed field), and a new contact with the same email lands on it', async () => {
  const created = await crm.sync(PRIYA);
  expect(created).toMatchObject({ action: 'upserted', leadId: zoho.records()[0]!.id });
  expect(zoho.records()[0]).toMatchObject({ First_Name: 'Priya', Last_Name: 'Sharma', Email: 'priya@example.com', Phone: '+919876543210', City: 'Mumbai' });

  const updated = await crm.sync({ ...PRIYA, name: 'Priya', attributes: {} }, { knownLeadId: created.leadId, previousPayload: created.payload });
  expect(updated).toMatchObject({ action: 'upserted', leadId: created.leadId });
  expect(zoho.records()[0]).toMatchObject({ Last_Name: 'Priya' });
  expect(zoho.records()[0]!.City).toBeUndefined();

  const other = await crm.sync({ contactId: 'c2', phone: '+14155550100', email: 'PRIYA@example.com', name: 'Priya S' });
  expect(other).toMatchObject({ action: 'upserted', leadId: created.leadId });
  expect(zoho.records()).toHaveLength(1);
});

it('a record refused inside an HTTP 202 (MANDATORY_NOT_FOUND) is a permanent failure naming the field', async () => {
  const err = await crm.syncFails({ contactId: 'c1', phone: '+919876543210' });
  expect(err).toMatchObject({ code: 'ERR_CRM_REJECTED', retryable: false, context: { status: 202, step: 'upsert' } });
  expect(err.context.reason).toBe('MANDATORY_NOT_FOUND: required field not found (Last_Name)');
  expect(zoho.records()).toEqual([]);
});

it('a record failure inside an HTTP 200 is a failure, not a success', async () => {
  zoho.addFault({ route: 'upsert', failInBody: true, times: 1 });
  const err = await crm.syncFails(PRIYA);
  expect(err).toMatchObject({ code: 'ERR_CRM_REJECTED', context: { status: 200 } });
  expect(err.message).toContain('HTTP 200');
  expect(err.context.reason).toBe('INVALID_DATA: injected fault');
});

it('429 with Retry-After → RetryableError with retryAfterMs', async () => {
  zoho.addFault({ route: 'upsert', status: 429, retryAfterSec: 5, times: 1 });
  const err = await crm.syncFails(PRIYA);
  expect(err).toMatchObject({ code: 'ERR_RATE_LIMITED', retryable: true, retryAfterMs: 5_000 });
  expect(err.context.reason).toBe('TOO_MANY_REQUESTS: injected fault');
});

it('a deleted lead: the upsert finds no duplicate and inserts a new one (Zoho matches by fields, not by the stored id)', async () => {
  const created = await crm.sync(PRIYA);
  zoho.deleteRecord(created.leadId!);
  const again = await crm.sync(PRIYA, { knownLeadId: created.leadId });
  expect(again.action).toBe('upserted');
  expect(again.leadId).not.toBe(created.leadId);
  expect(zoho.records().map((l) => l.id)).toEqual([again.leadId]);
});

it('a wrong token is an auth failure whose description carries no secret', async () => {
  const wrong = crmHarness('zoho', { ...zoho, token: 'not-the-token', url: zoho.url });
  try {
    const err = await wrong.syncFails(PRIYA);
    expect(err).toMatchObject({ code: 'ERR_CRM_AUTH', context: { status: 401 } });
    expect(err.context.reason).toBe('INVALID_TOKEN: invalid oauth token');
    expect(err.describe()).not.toContain('not-the-token');
  } finally {
    wrong.close();
  }
});
