import { registerBuiltinAdapters } from '@crm-sync/runner';
import { CannedHttpClient, checkExamples, compileMapping, dryRun, failureDetails, hashPayload, SyncEngine, toContact, toCurl, type SyncError } from '../index';
import { readSeedMapping } from './seed';

beforeAll(() => registerBuiltinAdapters());

const mapping = () => compileMapping(readSeedMapping(), { file: 'seed-contract.yaml' });
const contact = toContact({ contactId: 'c1', phone: '+91 98765 43210', name: 'Priya Sharma', attributes: { city: 'Mumbai', utm: 'x' } }, { defaultTenant: 'acme' });

describe('hashPayload', () => {
  it('is stable across key order, and changes with any value', () => {
    const a = { name: 'P', custom_fields: { a: 1, b: [1, { y: 2, x: 1 }] } };
    const b = { custom_fields: { b: [1, { x: 1, y: 2 }], a: 1 }, name: 'P' };
    expect(hashPayload(a)).toBe(hashPayload(b));
    expect(hashPayload(a)).toMatch(/^[0-9a-f]{32}$/);
    expect(hashPayload({ ...a, name: 'Q' })).not.toBe(hashPayload(a));
    expect(hashPayload({ list: [1, 2] })).not.toBe(hashPayload({ list: [2, 1] }));
  });

  it('is the hash renderPayload and sync report', async () => {
    const engine = new SyncEngine({ http: new CannedHttpClient(), secrets: () => 'k' });
    const { payload, hash } = await engine.renderPayload(mapping(), contact);
    expect(hash).toBe(hashPayload(payload));
    expect((await engine.sync(mapping(), contact)).payloadHash).toBe(hash);
  });
});

describe('the engine offline', () => {
  it('passes the seed contract\'s golden examples', async () => {
    expect(await checkExamples(mapping())).toEqual([]);
  });

  it('sends removed fields as cleared on update (the default policy: null)', async () => {
    const http = new CannedHttpClient();
    const engine = new SyncEngine({ http, secrets: () => 'k' });
    await engine.sync(mapping(), contact, { knownLeadId: 'L1', previousPayload: { name: 'Priya', email: 'old@example.com', custom_fields: { gone: 'y' } } });
    expect(JSON.parse(http.requests[0]!.body!)).toEqual({
      phone: '+919876543210', name: 'Priya Sharma', email: null, custom_fields: { city: 'Mumbai', utm: 'x', gone: null },
    });
  });

  it('masks the secret in previews and curl', async () => {
    const { requests } = await dryRun(mapping(), { contactId: 'c1', phone: '+919876543210', name: 'P' });
    const curl = requests.map(toCurl).join('\n');
    expect(curl).toContain("-H 'Auth-Key: ***'");
    expect(curl).not.toContain('placeholder');
  });

  it('forgets a stale lead id and matches again, once', async () => {
    const http = new CannedHttpClient({ update: { status: 404, body: { status: 'Update Failed', reason: 'No lead' } } });
    const engine = new SyncEngine({ http, secrets: () => 'k' });
    const result = await engine.sync(mapping(), contact, { knownLeadId: 'gone-1' });
    expect(http.requests.map((r) => r.step)).toEqual(['update', 'fetch', 'create']);
    expect(result).toMatchObject({ action: 'created', leadId: 'example-lead-1', forgotLeadId: 'gone-1' });
  });
});

describe('secrets in CRM answers', () => {
  it('masks a secret the CRM echoes back in its reason', async () => {
    const secret = 'Echo+Key/42';
    const reason = `bad key ${secret} (${encodeURIComponent(secret)})`;
    const http = new CannedHttpClient({ fetch: { status: 400, body: { status: 'Fetch Failed', reason } } });
    const engine = new SyncEngine({ http, secrets: () => secret });
    const err = await engine.sync(mapping(), contact).then(() => undefined, (e: unknown) => e as SyncError);
    expect(err?.code).toBe('ERR_CRM_REJECTED');
    const seen = [err!.describe(), JSON.stringify(err), JSON.stringify(failureDetails(err))].join('\n');
    expect(seen).toContain('bad key *** (***)');
    expect(seen).not.toContain(secret);
    expect(seen).not.toContain(encodeURIComponent(secret));
  });
});
