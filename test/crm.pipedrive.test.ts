import { startPipedriveEmulator, type Emulator, type PipedrivePerson } from '@crm-sync/testkit';
import { countRequests, crmHarness, startCrm, type CrmHarness } from './crm.harness';

// mappings/pipedrive.yaml against the Pipedrive emulator over real HTTP. Pipedrive never de-duplicates: only the
// mapping's match chain keeps one person per contact.

const PRIYA = { contactId: 'c1', phone: '+91 98765 43210', name: 'Priya Sharma', email: 'priya@example.com', attributes: { utm_campaign: 'diwali_2024' } };
const CAMPAIGN_KEY = '9b3f0c4e1a7d52e8c6b1f0a93d4e7c2b8a5f6d10';

let pd: Emulator<PipedrivePerson>;
let crm: CrmHarness;
beforeEach(async () => {
  // A still clock: the emulator's 2-second rate window never rolls over mid-test.
  const now = Date.parse('2024-05-06T09:00:00Z');
  ({ emulator: pd, crm } = await startCrm('pipedrive', startPipedriveEmulator({ now: () => now })));
});

it('creates with arrays and a hex custom field, updates by the stored id, and finds the person by email for a new contact', async () => {
  const created = await crm.sync(PRIYA);
  expect(created).toMatchObject({ action: 'created', leadId: '1' });
  expect(pd.records()[0]).toMatchObject({
    name: 'Priya Sharma',
    email: [{ value: 'priya@example.com', primary: true, label: 'work' }],
    phone: [{ value: '+919876543210', primary: true, label: 'mobile' }],
    [CAMPAIGN_KEY]: 'diwali_2024',
  });
  expect(created.calls.every((c) => c.url.includes('api_token=***') && !c.url.includes(pd.token))).toBe(true);
  expect(created.rateLimit).toEqual({ remaining: 77, resetMs: 2_000 });

  const updated = await crm.sync({ ...PRIYA, attributes: {} }, { knownLeadId: created.leadId, previousPayload: created.payload });
  expect(updated).toMatchObject({ action: 'updated', leadId: '1' });
  expect(updated.calls.map((c) => `${c.method} ${c.step}`)).toEqual(['PUT update']);
  expect(pd.records()[0]![CAMPAIGN_KEY]).toBeUndefined();

  const other = await crm.sync({ contactId: 'c2', phone: '+14155550100', email: 'Priya@Example.com', name: 'Priya' });
  expect(other).toMatchObject({ action: 'updated', leadId: '1' });
  expect(pd.records()).toHaveLength(1);
});

it('prevents duplicates by searching: a second contact with only the same phone updates the first person', async () => {
  await crm.sync({ contactId: 'c1', phone: '+919876543210', name: 'Priya' });
  const second = await crm.sync({ contactId: 'c2', phone: '+919876543210', name: 'Priya Sharma' });
  expect(second).toMatchObject({ action: 'updated', leadId: '1' });
  expect(countRequests(pd, 'create')).toBe(1);
  expect(pd.records()).toHaveLength(1);
});

it('with duplicates already in Pipedrive, the oldest person is updated and the choice is logged', async () => {
  for (let i = 0; i < 2; i++) {
    const res = await fetch(`${pd.url}/v1/persons?api_token=${pd.token}`, {
      method: 'POST', headers: { 'content-type': 'application/json' }, body: JSON.stringify({ name: `Priya ${i}`, email: ['priya@example.com'] }),
    });
    expect(res.status).toBe(201);
  }
  const result = await crm.sync(PRIYA);
  expect(result).toMatchObject({ action: 'updated', leadId: '1' });
  expect(result.warnings).toEqual(['fetch matched 2 leads; using the first ("1")']);
});

it('stale id: the stored person was deleted → PUT 404 → match again → create a new person', async () => {
  const created = await crm.sync(PRIYA);
  pd.deleteRecord(created.leadId!);
  const again = await crm.sync(PRIYA, { knownLeadId: created.leadId });
  expect(again).toMatchObject({ action: 'created', leadId: '2', forgotLeadId: '1' });
  expect(again.calls.map((c) => `${c.step} ${c.status}`)).toEqual(['update 404', 'fetch 200', 'fetch 200', 'create 201']);
});

it('429 with Retry-After on the search → RetryableError with retryAfterMs, and no create', async () => {
  pd.addFault({ route: 'fetch', status: 429, retryAfterSec: 2, times: 1 });
  const err = await crm.syncFails(PRIYA);
  expect(err).toMatchObject({ code: 'ERR_RATE_LIMITED', retryable: true, retryAfterMs: 2_000, context: { step: 'fetch' } });
  expect(countRequests(pd, 'create')).toBe(0);
});

it('a wrong api_token is a permanent auth failure with Pipedrive\'s message and no token in it', async () => {
  const wrong = crmHarness('pipedrive', { ...pd, token: 'not-the-token', url: pd.url });
  try {
    const err = await wrong.syncFails(PRIYA);
    expect(err).toMatchObject({ code: 'ERR_CRM_AUTH', context: { status: 401, reason: 'unauthorized access' } });
    expect(err.describe()).not.toContain('not-the-token');
  } finally {
    wrong.close();
  }
});
