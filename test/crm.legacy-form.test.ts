import { startLegacyFormCrm, type Emulator, type LegacyFormRecord } from '@crm-sync/testkit';
import { crmHarness, startCrm, type CrmHarness } from './crm.harness';

// mappings/legacy-form.yaml against the legacy form CRM emulator over real HTTP: everything answers 200.

const PRIYA = { contactId: 'c1', phone: '+91 98765 43210', name: 'Priya Sharma', email: 'priya@example.com', attributes: { city: 'Pune' } };

let lf: Emulator<LegacyFormRecord>;
let crm: CrmHarness;
beforeEach(async () => {
  ({ emulator: lf, crm } = await startCrm('legacy-form', startLegacyFormCrm()));
});

it('creates with a form body and digits-only phone, updates by the stored id (clearing a field), and finds the record by phone for a new contact', async () => {
  const created = await crm.sync(PRIYA);
  expect(created).toMatchObject({ action: 'created', leadId: '5001' });
  expect(lf.records()).toEqual([{ id: '5001', name: 'Priya Sharma', phone: '919876543210', email: 'priya@example.com', fields: { city: 'Pune' } }]);
  expect(lf.requests().every((r) => r.headers['content-type'] === 'application/x-www-form-urlencoded' && (r.body as Record<string, unknown>).api_key === '***')).toBe(true);

  const updated = await crm.sync({ ...PRIYA, attributes: {} }, { knownLeadId: created.leadId, previousPayload: created.payload });
  expect(updated).toMatchObject({ action: 'updated', leadId: '5001' });
  expect(lf.records()[0]!.fields).toEqual({});

  const other = await crm.sync({ contactId: 'c2', phone: '+919876543210', name: 'Priya S' });
  expect(other).toMatchObject({ action: 'updated', leadId: '5001' });
  expect(lf.records()).toHaveLength(1);
});

it('a failure inside an HTTP 200 is a permanent failure with the CRM\'s message', async () => {
  lf.addFault({ route: 'create', failInBody: true, times: 1 });
  const err = await crm.syncFails(PRIYA);
  expect(err).toMatchObject({ code: 'ERR_CRM_REJECTED', context: { status: 200, step: 'create', reason: 'injected fault' } });
  expect(lf.records()).toEqual([]);
});

it('a wrong key is refused inside an HTTP 200 ("access denied"), and the key never reaches the error', async () => {
  const wrong = crmHarness('legacy-form', { ...lf, token: 'not-the-key', url: lf.url });
  try {
    const err = await wrong.syncFails(PRIYA);
    expect(err).toMatchObject({ code: 'ERR_CRM_REJECTED', context: { status: 200, step: 'fetch', reason: 'access denied' } });
    expect(err.describe()).not.toContain('not-the-key');
  } finally {
    wrong.close();
  }
});

it('stale id: update answers not_found for a deleted record → find again → create', async () => {
  const created = await crm.sync(PRIYA);
  lf.deleteRecord(created.leadId!);
  const again = await crm.sync(PRIYA, { knownLeadId: created.leadId });
  expect(again).toMatchObject({ action: 'created', leadId: '5002', forgotLeadId: '5001' });
  expect(again.calls.map((c) => c.step)).toEqual(['update', 'fetch', 'fetch', 'create']);
});

it('503 with Retry-After from a proxy in front of the gateway → RetryableError with retryAfterMs', async () => {
  lf.addFault({ route: 'fetch', status: 503, retryAfterSec: 4, times: 1 });
  const err = await crm.syncFails(PRIYA);
  expect(err).toMatchObject({ code: 'ERR_CRM_UNAVAILABLE', retryable: true, retryAfterMs: 4_000 });
});
