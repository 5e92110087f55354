import { AUTHS, ENCODINGS, FLOWS, compile, contact, startHarness, type Combination, type Harness } from './engine.fixtures';

const combinations: Combination[] = FLOWS.flatMap((flow) => AUTHS.flatMap((auth) => ENCODINGS.map((encoding) => ({ flow, auth, encoding }))));

/** The calls (step, status) each flow makes for a new contact, and for one whose lead id is stored. */
const EXPECTED_CALLS = {
  'fetch-create-update': { first: [['fetch', 404], ['create', 200]], second: [['update', 200]] },
  upsert: { first: [['upsert', 200]], second: [['upsert', 200]] },
  'no-fetch': { first: [['create', 200]], second: [['update', 200]] },
};

describe.each(combinations)('flow $flow × auth $auth × encoding $encoding', (combination) => {
  let h: Harness;
  beforeAll(async () => { h = await startHarness(combination); });
  afterAll(() => h.close());

  const mapping = compile(combination);
  const calls = EXPECTED_CALLS[combination.flow];

  it('creates a new contact\'s lead, then updates it by the stored id without a duplicate', async () => {
    const first = await h.engine.sync(mapping, contact(), { baseUrl: h.crm.url });
    expect(first.action).toBe(combination.flow === 'upsert' ? 'upserted' : 'created');
    expect(first.leadId).toBe('L000001');
    expect(first.calls.map((c) => [c.step, c.status])).toEqual(calls.first);
    expect(h.crm.leads()).toEqual([expect.objectContaining({
      lead_id: 'L000001', phone: '+919876543210', name: 'Priya Sharma', email: 'priya@example.com',
      custom_fields: { utm_campaign: 'diwali_2024', city: 'Mumbai' },
    })]);

    const second = await h.engine.sync(mapping, contact({ name: 'Priya S.', attributes: { utm_campaign: 'diwali_2024', city: 'Pune' } }),
      { baseUrl: h.crm.url, knownLeadId: first.leadId, previousPayload: first.payload });
    expect(second.action).toBe(combination.flow === 'upsert' ? 'upserted' : 'updated');
    expect(second.leadId).toBe('L000001');
    expect(second.calls.map((c) => [c.step, c.status])).toEqual(calls.second);
    const leads = h.crm.leads();
    expect(leads).toHaveLength(1);
    expect(leads[0]).toMatchObject({ name: 'Priya S.', custom_fields: { utm_campaign: 'diwali_2024', city: 'Pune' }, version: 2 });

    const sent = h.crm.requests();
    expect(sent.map((r) => [r.route, r.status])).toEqual([...calls.first, ...calls.second]);
    const contentTypes = sent.filter((r) => r.method !== 'GET').map((r) => r.headers['content-type']);
    expect(contentTypes.length).toBeGreaterThan(0);
    for (const ct of contentTypes) expect(ct).toBe(combination.encoding === 'form' ? 'application/x-www-form-urlencoded' : 'application/json');
  });
});
