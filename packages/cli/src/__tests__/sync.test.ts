import { startReferenceCrm, type ReferenceCrm } from '@crm-sync/testkit';
import { PRIYA, runCli, SEED_MAPPING, seedWith, tempDir } from './harness';

const tmp = tempDir();
const contact = tmp.write('priya.json', JSON.stringify(PRIYA));
const KEY = 'cli-sync-secret-5c1';

describe('crm-sync sync (against the reference CRM)', () => {
  let crm: ReferenceCrm;
  const saved = process.env.SEED_CRM_AUTH_KEY;
  beforeAll(async () => {
    process.env.SEED_CRM_AUTH_KEY = KEY;
    crm = await startReferenceCrm({ auth: { style: 'auth-key', key: KEY } });
  });
  afterAll(async () => {
    if (saved === undefined) delete process.env.SEED_CRM_AUTH_KEY; else process.env.SEED_CRM_AUTH_KEY = saved;
    await crm.close();
  });
  beforeEach(() => crm.reset());

  test('creates the lead, then updates it with --lead-id; prints the result as JSON', async () => {
    const created = await runCli(['sync', SEED_MAPPING, '--contact', contact, '--base-url', crm.url]);
    expect(created.err).toBe('');
    expect(created.code).toBe(0);
    const first = JSON.parse(created.out);
    expect(first).toMatchObject({ action: 'created', leadId: 'L000001', warnings: [] });
    expect(first.calls.map((c: { step: string; status: number }) => [c.step, c.status])).toEqual([['fetch', 404], ['create', 200]]);

    const renamed = JSON.stringify({ ...PRIYA, name: 'Priya S. Sharma' });
    const updated = await runCli(['sync', SEED_MAPPING, '--contact', '-', '--base-url', crm.url, '--lead-id', first.leadId], { stdin: renamed });
    expect(updated.code).toBe(0);
    expect(JSON.parse(updated.out)).toMatchObject({ action: 'updated', leadId: 'L000001', calls: [{ step: 'update', method: 'POST', status: 200 }] });

    expect(crm.leads()).toMatchObject([{ lead_id: 'L000001', name: 'Priya S. Sharma', phone: '+919876543210', custom_fields: { utm_campaign: 'diwali' } }]);
    expect(created.out + updated.out).not.toContain(KEY);
  });

  test('a failing fetch is a classified error on stderr, exit 1, and nothing is created', async () => {
    crm.addFault({ route: 'fetch', status: 503, retryAfterSec: 7 });
    const r = await runCli(['sync', SEED_MAPPING, '--contact', contact, '--base-url', crm.url]);
    expect(r.code).toBe(1);
    expect(r.out).toBe('');
    const error = JSON.parse(r.err);
    expect(error).toMatchObject({ code: 'ERR_CRM_UNAVAILABLE', retryable: true, step: 'fetch', status: 503, retryAfterMs: 7000, contactId: 'c1' });
    expect(error.calls).toHaveLength(1);
    expect(crm.leads()).toEqual([]);
  });

  test('a wrong key is a permanent auth error; the secret is in no output', async () => {
    process.env.SEED_CRM_AUTH_KEY = 'not-the-key-3b9';
    try {
      const r = await runCli(['sync', SEED_MAPPING, '--contact', contact, '--base-url', crm.url]);
      expect(r.code).toBe(1);
      expect(JSON.parse(r.err)).toMatchObject({ code: 'ERR_CRM_AUTH', retryable: false, step: 'fetch', status: 401, reason: 'Missing or invalid Auth-Key header' });
      expect(r.err + r.out).not.toContain('not-the-key-3b9');
    } finally {
      process.env.SEED_CRM_AUTH_KEY = KEY;
    }
  });

  test('plain http to a host that is not allowed is refused before any request', async () => {
    const lan = await runCli(['sync', SEED_MAPPING, '--contact', contact, '--base-url', 'http://10.1.2.3:8080']);
    expect(lan.code).toBe(1);
    expect(JSON.parse(lan.err)).toMatchObject({ code: 'ERR_URL_FORBIDDEN', retryable: false, hint: expect.stringContaining('--allow-host') });
  });

  test('--allow-host lets a mapping whose own base URL is plain http on loopback through', async () => {
    const local = tmp.write('local.yaml', seedWith('baseUrl: https://crm.example.com', `baseUrl: ${crm.url}`));
    const refused = await runCli(['sync', local, '--contact', contact]);
    expect(refused.code).toBe(1);
    expect(JSON.parse(refused.err)).toMatchObject({ code: 'ERR_URL_FORBIDDEN' });
    expect(crm.requests()).toEqual([]);

    const allowed = await runCli(['sync', local, '--contact', contact, '--allow-host', '127.0.0.1']);
    expect(allowed.code).toBe(0);
    expect(JSON.parse(allowed.out)).toMatchObject({ action: 'created' });
  });

  test('an invalid contact is a classified error naming the field', async () => {
    const r = await runCli(['sync', SEED_MAPPING, '--contact', '-', '--base-url', crm.url], { stdin: JSON.stringify({ ...PRIYA, email: 'not-an-email' }) });
    expect(r.code).toBe(1);
    expect(JSON.parse(r.err)).toMatchObject({ code: 'ERR_CONTACT_INVALID', step: 'validate', message: expect.stringContaining('email:') });
    expect(crm.requests()).toEqual([]);
  });

  test('usage errors exit 2', async () => {
    expect((await runCli(['sync', SEED_MAPPING])).code).toBe(2);
    expect((await runCli(['sync', SEED_MAPPING, 'extra.yaml', '--contact', contact])).code).toBe(2);
    expect((await runCli(['sync', SEED_MAPPING, '--contact', contact, '--allow-host'])).code).toBe(2);
  });
});
