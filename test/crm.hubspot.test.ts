import { failureDetails, leadDifferences, RetryableError } from '@crm-sync/core';
import { startHubSpotEmulator, type HubSpotEmulator, type HubSpotEmulatorOptions } from '@crm-sync/testkit';
import { countRequests, startCrm, type CrmHarness } from './crm.harness';

// mappings/hubspot.yaml against the HubSpot emulator over real HTTP.

const PRIYA = { contactId: 'c1', phone: '+91 98765 43210', name: 'Priya Sharma', email: 'priya@example.com', attributes: { city: 'Mumbai' } };

let hs: HubSpotEmulator;
let crm: CrmHarness;
async function setup(opts: HubSpotEmulatorOptions = {}, now?: () => number) {
  ({ emulator: hs, crm } = await startCrm('hubspot', startHubSpotEmulator(opts), { now }));
}

it('creates, updates by the stored id (clearing a removed property), and finds the contact by email for a new contact', async () => {
  await setup();
  const created = await crm.sync(PRIYA);
  expect(created).toMatchObject({ action: 'created', leadId: hs.records()[0]!.id });
  expect(hs.records()[0]!.properties).toMatchObject({ email: 'priya@example.com', firstname: 'Priya', lastname: 'Sharma', phone: '+919876543210', city: 'Mumbai' });

  const updated = await crm.sync({ ...PRIYA, name: 'Priya S', attributes: {} }, { knownLeadId: created.leadId, previousPayload: created.payload });
  expect(updated).toMatchObject({ action: 'updated', leadId: created.leadId });
  expect(updated.calls.map((c) => `${c.method} ${c.step}`)).toEqual(['PATCH update']);
  expect(hs.records()[0]!.properties).toMatchObject({ lastname: 'S' });
  expect(hs.records()[0]!.properties.city).toBeUndefined();

  const other = await crm.sync({ contactId: 'c2', phone: '+14155550100', email: 'Priya@Example.com', name: 'Priya' });
  expect(other).toMatchObject({ action: 'updated', leadId: created.leadId });
  expect(hs.records()).toHaveLength(1);
});

it('reconcile reads the contact back in the payload\'s shape: equal after a sync, a property changed in HubSpot differs', async () => {
  await setup();
  const event = { ...PRIYA, email: 'Priya@Example.com', attributes: { city: 'Mumbai', utm_campaign: 'diwali' } };
  const created = await crm.sync(event);
  const reading = await crm.readLead(event, created.leadId!);
  expect(reading).toMatchObject({ found: true, leadId: created.leadId });
  expect(leadDifferences(created.payload, reading.found ? reading.fields : undefined)).toEqual([]);

  await fetch(`${hs.url}/crm/v3/objects/contacts/${created.leadId}`, {
    method: 'PATCH', headers: { authorization: `Bearer ${hs.token}`, 'content-type': 'application/json' }, body: JSON.stringify({ properties: { city: 'Pune' } }),
  });
  const after = await crm.readLead(event, created.leadId!);
  expect(leadDifferences(created.payload, after.found ? after.fields : undefined)).toEqual([{ path: 'city', sent: 'Mumbai', crm: 'Pune' }]);
});

it('search lag: a create whose answer was lost is not repeated while search cannot see it; after the lag the search finds it', async () => {
  let now = Date.parse('2024-05-06T09:00:00Z');
  const clock = () => now;
  await setup({ searchLagMs: 10_000, now: clock }, clock);
  expect(crm.mapping.definition.searchLagMs).toBe(10_000);
  // A phone-only contact: HubSpot's 409 on duplicate emails cannot protect it.
  const contact = { contactId: 'c1', phone: '+919876543210', name: 'Priya Sharma' };
  hs.addFault({ route: 'create', resetAfterCommit: true, times: 1 });
  let createIntentAt: number | undefined;
  const lost = await crm.syncFails(contact, { onCreateIntent: () => { createIntentAt = now; } });
  expect(lost).toMatchObject({ code: 'ERR_NETWORK', retryable: true });
  expect(hs.records()).toHaveLength(1);

  now += 1_000;
  const retry = await crm.syncFails(contact, { unconfirmedCreateAt: createIntentAt });
  expect(retry).toBeInstanceOf(RetryableError);
  expect(retry).toMatchObject({ code: 'ERR_SEARCH_LAG', retryAfterMs: 9_000 });
  expect(failureDetails(retry)!.calls.map((c) => c.step)).toEqual(['fetch']);
  expect(countRequests(hs, 'create')).toBe(1);

  now += 9_000;
  const found = await crm.sync(contact, { unconfirmedCreateAt: createIntentAt });
  expect(found).toMatchObject({ action: 'updated', leadId: hs.records()[0]!.id });
  expect(countRequests(hs, 'create')).toBe(1);
  expect(hs.records()).toHaveLength(1);
});

it('409 CONFLICT on a duplicate email: adopts the existing id from the message and updates it', async () => {
  // Search lags far behind, so the second contact's search misses the first.
  await setup({ searchLagMs: 60_000 });
  const first = await crm.sync(PRIYA);
  const second = await crm.sync({ contactId: 'c2', phone: '+14155550100', email: 'priya@example.com', name: 'P. Sharma' });
  expect(second).toMatchObject({ action: 'updated', leadId: first.leadId });
  expect(second.calls.map((c) => `${c.step} ${c.status}`)).toEqual(['fetch 200', 'fetch 200', 'create 409', 'update 200']);
  expect(second.warnings.join(' ')).toContain(`lead "${first.leadId}" already exists`);
  expect(hs.records()).toHaveLength(1);
  expect(hs.records()[0]!.properties).toMatchObject({ phone: '+14155550100', lastname: 'Sharma', firstname: 'P.' });
});

it('stale id: the stored contact was merged into another → PATCH 404 → match again (by phone) and update the survivor', async () => {
  await setup();
  const survivor = await crm.sync({ contactId: 'c0', phone: '+919876543210', name: 'Priya', email: 'priya.old@example.com' });
  // The same person, stored under another phone: a second contact record in HubSpot.
  const merged = await crm.sync({ ...PRIYA, phone: '+14155550100' });
  expect(hs.records()).toHaveLength(2);
  expect(hs.mergeContacts(survivor.leadId!, merged.leadId!)).toBe(true);
  const again = await crm.sync(PRIYA, { knownLeadId: merged.leadId });
  expect(again).toMatchObject({ action: 'updated', leadId: survivor.leadId, forgotLeadId: merged.leadId });
  expect(again.calls.map((c) => `${c.step} ${c.status}`)).toEqual(['update 404', 'fetch 200', 'fetch 200', 'update 200']);
  expect(hs.records()).toHaveLength(1);
});

it('429 with Retry-After → RetryableError with retryAfterMs; the rate-limit headers are read on every answer', async () => {
  await setup({ rateLimit: { max: 2, intervalMs: 10_000 } });
  const created = await crm.sync(PRIYA);
  expect(created.rateLimit).toEqual({ remaining: 1, resetMs: 10_000 });

  hs.addFault({ route: 'update', status: 429, retryAfterSec: 3, times: 1 });
  const injected = await crm.syncFails(PRIYA, { knownLeadId: created.leadId });
  expect(injected).toMatchObject({ code: 'ERR_RATE_LIMITED', retryable: true, retryAfterMs: 3_000 });

  await crm.sync(PRIYA, { knownLeadId: created.leadId });
  const limited = await crm.syncFails(PRIYA, { knownLeadId: created.leadId });
  expect(limited).toMatchObject({ code: 'ERR_RATE_LIMITED', retryable: true });
  expect(limited.context.reason).toContain('ten_secondly_rolling');
  expect(failureDetails(limited)!.rateLimit).toEqual({ remaining: 0, resetMs: 10_000 });
});
