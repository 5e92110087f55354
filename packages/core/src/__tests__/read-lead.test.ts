import { registerBuiltinAdapters } from '@crm-sync/runner';
import { CannedHttpClient, compileDefinition, compileMapping, leadDifferences, parseMapping, SyncEngine, toContact, type MappingDefinition, type SyncError } from '../index';
import { readSeedMapping } from './seed';

beforeAll(() => registerBuiltinAdapters());

const seed = () => compileMapping(readSeedMapping(), { file: 'seed-contract.yaml' });
const contact = toContact({ contactId: 'c1', phone: '+91 98765 43210', name: 'Priya Sharma', email: 'priya@example.com', attributes: { city: 'Mumbai' } }, { defaultTenant: 'acme' });

function variant(change: (d: MappingDefinition) => void) {
  const d = structuredClone(parseMapping(readSeedMapping())) as MappingDefinition;
  change(d);
  return compileDefinition(d, { hash: 'test' });
}

describe('leadDifferences', () => {
  it('compares what was sent, down to its values', () => {
    const sent = { name: 'Priya', email: 'p@example.com', custom_fields: { city: 'Mumbai', plan: 'pro' } };
    expect(leadDifferences(sent, structuredClone(sent))).toEqual([]);
    expect(leadDifferences(sent, { name: 'Priya', email: 'p@example.com', custom_fields: { city: 'Pune', plan: 'pro' } }))
      .toEqual([{ path: 'custom_fields.city', sent: 'Mumbai', crm: 'Pune' }]);
  });

  it('counts a field the CRM lacks, and ignores fields only the CRM has', () => {
    expect(leadDifferences({ name: 'P', custom_fields: { city: 'Mumbai' } }, { name: 'P', owner: 'x', custom_fields: {} }))
      .toEqual([{ path: 'custom_fields.city', sent: 'Mumbai', crm: undefined }]);
    expect(leadDifferences({ name: 'P', custom_fields: { city: 'Mumbai' } }, { name: 'P' }))
      .toEqual([{ path: 'custom_fields.city', sent: 'Mumbai', crm: undefined }]);
    expect(leadDifferences({ name: 'P' }, { name: 'P', email: 'extra@example.com' })).toEqual([]);
  });

  it('treats null, "" and absent alike, and compares values as text', () => {
    expect(leadDifferences({ email: null, note: '', n: 1, ok: true, big: 10 }, { note: null, n: '1', ok: 'true', big: '10' })).toEqual([]);
    expect(leadDifferences({ email: null }, { email: 'still@example.com' })).toEqual([{ path: 'email', sent: null, crm: 'still@example.com' }]);
    expect(leadDifferences({ n: 1 }, { n: 2 })).toEqual([{ path: 'n', sent: 1, crm: 2 }]);
  });

  it('compares arrays in order, and names odd keys in backticks', () => {
    expect(leadDifferences({ tags: ['a', 'b'] }, { tags: ['a', 'b'] })).toEqual([]);
    expect(leadDifferences({ tags: ['a', 'b'] }, { tags: ['b', 'a'] })).toHaveLength(1);
    expect(leadDifferences({ phones: [{ v: '+1' }] }, { phones: [{ v: '+1', primary: true }] })).toHaveLength(1);
    expect(leadDifferences({ 'utm campaign': 'x' }, {})).toEqual([{ path: '`utm campaign`', sent: 'x', crm: undefined }]);
    expect(leadDifferences({ a: { b: 1 } }, { a: 'flat' })).toEqual([{ path: 'a.b', sent: 1, crm: undefined }]);
  });
});

describe('SyncEngine.readLead', () => {
  it('sends the fetch a sync would send, and reads the lead and its fields', async () => {
    const fields = { phone: '+919876543210', name: 'Priya Sharma', custom_fields: { city: 'Mumbai' } };
    const http = new CannedHttpClient({ fetch: { status: 200, body: { lead_id: 'L-7', lead_fields: fields } } });
    const reading = await new SyncEngine({ http, secrets: () => 'k' }).readLead(seed(), contact, { knownLeadId: 'L-7' });
    expect(reading).toEqual({ found: true, leadId: 'L-7', fields, calls: [expect.objectContaining({ step: 'fetch', method: 'GET', status: 200 })] });
    expect(http.requests.map((r) => `${r.method} ${r.url}`)).toEqual(['GET https://crm.example.com/crm/fetch?phone=%2B919876543210&email=priya%40example.com']);
  });

  it('says when the CRM has no such lead', async () => {
    const http = new CannedHttpClient({ fetch: { status: 404, body: { status: 'Not Found', reason: 'No matching lead' } } });
    const reading = await new SyncEngine({ http, secrets: () => 'k' }).readLead(seed(), contact, { knownLeadId: 'L-7' });
    expect(reading).toMatchObject({ found: false });
  });

  it('fetches by the stored id when the match chain starts with leadId', async () => {
    const mapping = variant((d) => {
      d.match = ['leadId', 'phone'];
      d.endpoints.fetch!.query = { by: '{{match.key}}', value: '{{match.value}}' };
    });
    const http = new CannedHttpClient({ fetch: { status: 200, body: { lead_id: 'L-7' } } });
    const reading = await new SyncEngine({ http, secrets: () => 'k' }).readLead(mapping, contact, { knownLeadId: 'L-7' });
    expect(http.requests.map((r) => r.url)).toEqual(['https://crm.example.com/crm/fetch?by=leadId&value=L-7']);
    // No lead_fields in the answer: the lead's existence and id are all there is to check.
    expect(reading).toMatchObject({ found: true, leadId: 'L-7', fields: undefined });
  });

  it('reads the fields with the mapping\'s own leadFields reader, secrets masked', async () => {
    const mapping = variant((d) => { d.endpoints.fetch!.responses = { leadFields: '{"name": body.data.full_name, "custom_fields": {"city": body.data.town}}' }; });
    const http = new CannedHttpClient({ fetch: { status: 200, body: { lead_id: 'L-7', data: { full_name: 'Priya key-s3cret', town: 'Pune' } } } });
    const reading = await new SyncEngine({ http, secrets: () => 'key-s3cret' }).readLead(mapping, contact, { knownLeadId: 'L-7' });
    expect(reading).toMatchObject({ found: true, fields: { name: 'Priya ***', custom_fields: { city: 'Pune' } } });
  });

  it('refuses a mapping without a fetch endpoint, and throws a failing fetch as a sync would', async () => {
    const noFetch = variant((d) => { d.flow = 'no-fetch'; delete d.endpoints.fetch; });
    const engine = new SyncEngine({ http: new CannedHttpClient(), secrets: () => 'k' });
    await expect(engine.readLead(noFetch, contact, { knownLeadId: 'L-7' })).rejects.toMatchObject({ code: 'ERR_NO_FETCH' });
    const failing = new SyncEngine({ http: new CannedHttpClient({ fetch: { status: 503, body: { status: 'Down' } } }), secrets: () => 'k' });
    const err = await failing.readLead(seed(), contact, { knownLeadId: 'L-7' }).catch((e: SyncError) => e);
    expect(err).toMatchObject({ code: 'ERR_CRM_UNAVAILABLE', retryable: true });
  });

  it('never compiles leadFields for other endpoints', () => {
    const m = seed();
    expect(m.endpoints.fetch!.readers.leadFields).toBeDefined();
    expect(m.endpoints.update!.readers.leadFields).toBeUndefined();
  });
});
