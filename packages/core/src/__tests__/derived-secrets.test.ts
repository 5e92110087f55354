import { registerBuiltinAdapters } from '@crm-sync/runner';
import { CannedHttpClient, compileMapping, dryRun, SyncEngine, toContact, type SyncError } from '../index';
import { readSeedMapping } from './seed';

beforeAll(() => registerBuiltinAdapters());

const PASSWORD = 'pa55:word+/é';
const BASIC = Buffer.from(`api:${PASSWORD}`, 'utf8').toString('base64');
const mapping = () => compileMapping(readSeedMapping().replace(/^auth: .*$/m, 'auth: { adapter: basic, username: api, secret: "env:SEED_CRM_AUTH_KEY" }'), { file: 'basic.yaml' });
const contact = toContact({ contactId: 'c1', phone: '+91 98765 43210', name: 'Priya Sharma' }, { defaultTenant: 'acme' });

describe('secrets an auth adapter derives from the credential (Basic auth\'s base64)', () => {
  it('are masked in a preview: the header reads "Basic ***"', async () => {
    const { requests } = await dryRun(mapping(), { contactId: 'c1', phone: '+919876543210' });
    expect(requests.map((r) => r.headers.Authorization)).toEqual(['Basic ***', 'Basic ***']);
  });

  it('are masked whole whatever the username\'s length (the secret\'s own base64 inside them is not masked first)', async () => {
    // No option: the secret is user:password, or (the offline placeholder has no colon) a user alone.
    for (const auth of ['username: ab,', 'username: abc,', 'username: alice,', 'password: X,', 'password: XY,', '']) {
      const m = compileMapping(readSeedMapping().replace(/^auth: .*$/m, `auth: { adapter: basic, ${auth} secret: "env:SEED_CRM_AUTH_KEY" }`), { file: 'basic.yaml' });
      const { requests } = await dryRun(m, { contactId: 'c1', phone: '+919876543210' });
      expect([auth, requests[0]!.headers.Authorization]).toEqual([auth, 'Basic ***']);
    }
  });

  it('are masked in what the CRM echoes back, and reported to onSecret for the runner\'s logs and history', async () => {
    const told: string[] = [];
    const http = new CannedHttpClient({ fetch: { status: 400, body: { status: 'Failed', reason: `bad credentials: Basic ${BASIC} (${encodeURIComponent(BASIC)})` } } }, []);
    const err = await new SyncEngine({ http, secrets: () => PASSWORD, onSecret: (v) => told.push(v) }).sync(mapping(), contact).then(() => undefined, (e: unknown) => e as SyncError);
    expect(err?.context.reason).toBe('bad credentials: Basic *** (***)');
    expect(told).toEqual(expect.arrayContaining([BASIC, `api:${PASSWORD}`]));
    // What was sent is the real header (the canned client was given nothing to mask).
    expect(http.requests[0]!.headers.Authorization).toBe(`Basic ${BASIC}`);
  });
});
