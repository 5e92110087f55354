import { join } from 'node:path';
import { startReferenceCrm, type ReferenceCrm, type ReferenceCrmOptions } from '@crm-sync/testkit';
import { decideTarget, isLoopbackHost } from '../verify';
import { REPO, runCli, SEED_MAPPING, seedWith, tempDir } from './harness';

const tmp = tempDir();

/** The seed mapping's fetch endpoint line, and the mapping written with readers of the fetch's own. */
const FETCH_LINE = 'fetch:  { method: GET, url: /crm/fetch, query: { phone: "{{contact.phone}}", email: "{{contact.email}}" } }';
const withFetchReaders = (file: string, readers: string) => tmp.write(file, seedWith(FETCH_LINE, FETCH_LINE.replace(/ }$/, `, responses: ${readers} }`)));

/** Sets env variables for one test file and puts the old values back afterwards. */
function useEnv(vars: Record<string, string>): void {
  const saved = Object.fromEntries(Object.keys(vars).map((k) => [k, process.env[k]]));
  beforeAll(() => Object.assign(process.env, vars));
  afterAll(() => {
    for (const [k, v] of Object.entries(saved)) if (v === undefined) delete process.env[k]; else process.env[k] = v;
  });
}

/** A reference CRM for the describe block, emptied before each test. */
function useCrm(options: ReferenceCrmOptions): () => ReferenceCrm {
  let crm: ReferenceCrm;
  beforeAll(async () => { crm = await startReferenceCrm(options); });
  afterAll(() => crm.close());
  beforeEach(() => crm.reset());
  return () => crm;
}

/** The table rows of a report: `# step … result` as printed (step name and result on a step's first row). */
function stepLines(out: string): string[] {
  return out.split('\n').filter((l) => /^\d\s/.test(l));
}

const KEY = 'verify-secret-77f';

describe('crm-sync verify: the seed contract against the reference CRM', () => {
  useEnv({ SEED_CRM_AUTH_KEY: KEY });
  const crm = useCrm({ auth: { style: 'auth-key', key: KEY } });

  test('an update-only mapping: step 1 says its flow never creates, so verify cannot make its test lead, and nothing is written', async () => {
    const updateOnly = tmp.write('update-only.yaml', seedWith('flow: fetch-create-update', 'flow: update-only'));
    const r = await runCli(['verify', updateOnly, '--base-url', crm().url]);
    expect(r.code).toBe(1);
    expect(r.out).toContain('the update-only flow wrote nothing for the new test contact (skipped: the CRM has no lead for this contact, and the update-only flow never creates one): verify makes a marked test lead');
    expect(crm().leads()).toEqual([]);
  });

  test('passes all six steps with one marked lead, renamed and read back; the secret is in no output', async () => {
    const r = await runCli(['verify', SEED_MAPPING, '--base-url', crm().url]);
    expect(r.err).toBe('');
    expect(r.code).toBe(0);
    const steps = stepLines(r.out);
    expect(steps.map((l) => l.split(/\s{2,}/).slice(0, 2))).toEqual([['1', 'create'], ['2', 'fetch by phone'], ['3', 'fetch by email'], ['4', 'update'], ['5', 'fetch again'], ['6', 'read back']]);
    expect(steps.every((l) => l.includes('PASS'))).toBe(true);
    expect(r.out).toContain('PASSED: 6 steps');
    expect(r.out).toContain('6  read back ');
    expect(r.out).toContain('PASS read lead L000001 back: every field as sent');
    expect(r.out).toContain('The test lead L000001 stays in the CRM');

    const [lead, ...others] = crm().leads();
    expect(others).toEqual([]);
    expect(lead.name).toMatch(/^crm-sync verify \d{4}-\d\d-\d\dT\d\d:\d\d:\d\dZ updated$/);
    expect(lead.email).toMatch(/^crm-sync-verify\+[0-9a-f]{8}@example\.com$/);
    expect(lead.phone).toMatch(/^\+120255501\d\d$/);
    expect(lead.custom_fields).toEqual({ crm_sync_test: true });

    // Fetch by phone without the email, by email with another phone, then again with both.
    const fetches = crm().requests().filter((q) => q.route === 'fetch').map((q) => q.query);
    expect(fetches).toEqual([
      { phone: lead.phone, email: lead.email },
      { phone: lead.phone },
      { phone: expect.stringMatching(/^\+120255501\d\d$/), email: lead.email },
      { phone: lead.phone, email: lead.email },
      { phone: lead.phone, email: lead.email }, // step 6, the read back
    ]);
    expect(fetches[2].phone).not.toBe(lead.phone);
    expect(r.out).toContain(`GET ${crm().url}/crm/fetch?phone=%2B1202555`);
    expect(r.out).not.toContain(KEY);
  });

  test('--tenant gives the test contact the tenant a mapping\'s templates use (default crm-sync-verify)', async () => {
    const file = tmp.write('tenant-header.yaml', seedWith('create: { method: POST, url: /crm/create }', 'create: { method: POST, url: /crm/create, headers: { X-Tenant: "{{tenant}}" } }'));
    const tenants = () => crm().requests().filter((q) => q.route === 'create').map((q) => q.headers['x-tenant']);
    expect((await runCli(['verify', file, '--base-url', crm().url, '--tenant', 'acme-eu'])).code).toBe(0);
    expect(tenants()).toEqual(['acme-eu']);
    // A second test lead in the same CRM could draw the first one's fictional phone (one of a hundred) and be found.
    crm().reset();
    expect((await runCli(['verify', file, '--base-url', crm().url])).code).toBe(0);
    expect(tenants()).toEqual(['crm-sync-verify']);
    const bad = await runCli(['verify', file, '--base-url', crm().url, '--tenant', 'a/b']);
    expect(bad.code).toBe(2);
    expect(bad.err).toContain('--tenant: a tenant name as the config takes it');
  });

  test('with a match chain, each fetch step narrows the chain to its key; a key not in the chain is skipped', async () => {
    const chained = (chain: string) => tmp.write(`chain-${chain}.yaml`, seedWith(FETCH_LINE, 'fetch:  { method: GET, url: "/crm/fetch?{{match.key}}={{match.value}}" }')
      .replace('flow: fetch-create-update', `flow: fetch-create-update\nmatch: [${chain}]`));
    const both = await runCli(['verify', chained('email, phone'), '--base-url', crm().url]);
    expect(both.code).toBe(0);
    const lead = crm().leads()[0];
    expect(crm().requests().filter((q) => q.route === 'fetch').map((q) => q.query)).toEqual([
      { email: lead.email }, { phone: lead.phone }, // step 1: the chain finds nothing, then create
      { phone: lead.phone }, { email: lead.email }, // steps 2 and 3
      { email: lead.email }, // step 5: the chain stops at the first key that finds the lead
      { email: lead.email }, // step 6, the read back: the same
    ]);

    const phoneOnly = await runCli(['verify', chained('phone'), '--base-url', crm().url]);
    expect(phoneOnly.code).toBe(0);
    expect(stepLines(phoneOnly.out)[2]).toMatch(/^3\s+fetch by email\s+-\s+-\s+SKIP the match chain \(phone\) has no email$/);
  });

  test('a leadId reader on the wrong field fails step 1, naming responses.leadId and what the CRM answered', async () => {
    const file = tmp.write('wrong-lead-id.yaml', seedWith('leadId: body.lead_id', 'leadId: body.id'));
    const r = await runCli(['verify', file, '--base-url', crm().url]);
    expect(r.code).toBe(1);
    expect(r.out).toContain('FAILED: 1 of 6 steps');
    expect(r.out).toContain('step 1 (create): ERR_NO_LEAD_ID: create answered success, but responses.leadId found no id');
    expect(r.out).toContain('  reader: responses.leadId = body.id');
    expect(r.out).toMatch(/ {2}got: {4}200 \{"lead_id":"L000001","status":"Successfully Created"\}/);
    expect(stepLines(r.out).slice(1).every((l) => l.includes('SKIP needs the lead from step 1'))).toBe(true);
  });

  test('a fetch leadId reader on the wrong field fails the fetch steps, naming the reader and the id it read', async () => {
    const file = withFetchReaders('wrong-fetch-id.yaml', '{ leadId: body.lead_fields.phone }');
    const r = await runCli(['verify', file, '--base-url', crm().url]);
    expect(r.code).toBe(1);
    expect(r.out).toContain('FAILED: 4 of 6 steps');
    expect(r.out).toMatch(/step 2 \(fetch by phone\): fetch found lead "\+120255501\d\d", but step 1 made "L000001" \(sent without the email\)/);
    expect(r.out).toContain('  reader: endpoints.fetch.responses.leadId = body.lead_fields.phone');
    expect(stepLines(r.out).find((l) => l.startsWith('4'))).toContain('PASS updated lead L000001 (renamed)');
  });

  test('a leadFields reader that does not give the lead as sent fails the read back, naming the reader and the fields', async () => {
    const file = withFetchReaders('wrong-lead-fields.yaml', '{ leadFields: \'$merge([body.lead_fields, {"name": body.lead_fields.email}])\' }');
    const r = await runCli(['verify', file, '--base-url', crm().url]);
    expect(r.code).toBe(1);
    expect(r.out).toContain('FAILED: 1 of 6 steps');
    expect(r.out).toMatch(/step 6 \(read back\): leadFields does not give the lead as it was last synced \(reconcile would report it as differing\): name: sent "crm-sync verify [^"]+ updated", read back "crm-sync-verify\+[0-9a-f]{8}@example\.com"/);
    expect(r.out).toContain('  reader: endpoints.fetch.responses.leadFields = $merge([body.lead_fields, {"name": body.lead_fields.email}])');
  });

  test('a CRM whose fetch answers 503 fails step 1 before any create, naming the failed reader and the 503', async () => {
    crm().addFault({ route: 'fetch', status: 503 });
    const r = await runCli(['verify', SEED_MAPPING, '--base-url', crm().url]);
    expect(r.code).toBe(1);
    expect(r.out).toContain('step 1 (create) at its fetch call: ERR_CRM_UNAVAILABLE: the CRM answered 503 (the CRM\'s reason: injected)');
    expect(r.out).toContain('  reader: responses.failed = status >= 400 or $contains($string(body.status), "Failed")');
    expect(r.out).toMatch(/ {2}got: {4}503 /);
    expect(crm().leads()).toEqual([]);
  });

  test('a failing update fails step 4 only; the other steps still run', async () => {
    crm().addFault({ route: 'update', status: 422 });
    const r = await runCli(['verify', SEED_MAPPING, '--base-url', crm().url]);
    expect(r.code).toBe(1);
    expect(r.out).toContain('FAILED: 1 of 6 steps');
    expect(r.out).toContain('step 4 (update): ERR_CRM_REJECTED: the CRM answered 422');
    expect(stepLines(r.out).find((l) => l.startsWith('5'))).toContain('PASS found lead L000001');
    expect(stepLines(r.out).find((l) => l.startsWith('6'))).toContain('SKIP needs the payload of step 4');
  });

  test('a --plugin that cannot be loaded is an error naming it, before any request', async () => {
    const r = await runCli(['verify', SEED_MAPPING, '--base-url', crm().url, '--plugin', './no-such-crm-sync-plugin']);
    expect(r.code).toBe(1);
    expect(r.err).toContain('cannot load plugin "./no-such-crm-sync-plugin"');
    expect(crm().requests()).toEqual([]);
  });

  test('an unset secret is an error naming its reference, before any request', async () => {
    delete process.env.SEED_CRM_AUTH_KEY;
    try {
      const r = await runCli(['verify', SEED_MAPPING, '--base-url', crm().url]);
      expect(r.code).toBe(1);
      expect(r.err).toContain('ERR_SECRET_MISSING: secret env:SEED_CRM_AUTH_KEY: environment variable SEED_CRM_AUTH_KEY is not set');
      expect(crm().requests()).toEqual([]);
    } finally {
      process.env.SEED_CRM_AUTH_KEY = KEY;
    }
  });
});

describe('crm-sync verify: the other mappings that speak the contract', () => {
  useEnv({ BEARER_CRM_TOKEN: 'bearer-verify-3c1', LEGACY_CRM_API_KEY: 'legacy-verify-9d2', UPSERT_CRM_KEY: 'upsert-verify-4e7' });

  describe('bearer-no-fetch', () => {
    const crm = useCrm({ auth: { style: 'bearer', key: 'bearer-verify-3c1' }, fetch: false });
    test('creates and updates; the fetch steps are skipped and say why', async () => {
      const r = await runCli(['verify', join(REPO, 'mappings/bearer-no-fetch.yaml'), '--base-url', crm().url]);
      expect(r.code).toBe(0);
      expect(r.out).toContain('PASSED: 2 steps, 4 skipped');
      expect(stepLines(r.out).filter((l) => l.includes('SKIP the mapping declares no fetch endpoint (flow no-fetch)'))).toHaveLength(4);
      expect(crm().leads()).toMatchObject([{ lead_id: 'L000001', name: expect.stringMatching(/ updated$/) }]);
    });
  });

  describe('form-body-secret', () => {
    const crm = useCrm({ auth: { style: 'body-secret', key: 'legacy-verify-9d2', field: 'api_key' } });
    test('passes; fetch by email is skipped (its fetch sends only the phone); the key in the query string is masked', async () => {
      const r = await runCli(['verify', join(REPO, 'mappings/form-body-secret.yaml'), '--base-url', crm().url]);
      expect(r.code).toBe(0);
      expect(r.out).toContain('PASSED: 5 steps, 1 skipped');
      expect(stepLines(r.out)[2]).toMatch(/^3\s+fetch by email\s+-\s+-\s+SKIP the fetch request does not carry the email$/);
      expect(r.out).toContain('api_key=***');
      expect(r.out).not.toContain('legacy-verify-9d2');
    });
  });

  describe('single-upsert', () => {
    const crm = useCrm({ auth: { style: 'auth-key', key: 'upsert-verify-4e7', header: 'X-Api-Key' }, upsert: true, fetch: false });
    test('upserts twice onto one lead; the fetch steps are skipped', async () => {
      const r = await runCli(['verify', join(REPO, 'mappings/single-upsert.yaml'), '--base-url', crm().url]);
      expect(r.code).toBe(0);
      expect(stepLines(r.out)[0]).toMatch(/^1\s+upsert\s+POST \S+\/crm\/upsert\s+200\s+PASS upserted lead L000001/);
      expect(stepLines(r.out).find((l) => l.startsWith('4'))).toContain('PASS upserted lead L000001');
      expect(crm().leads()).toHaveLength(1);
    });
  });
});

describe('crm-sync verify: where it may write', () => {
  test('refuses a base URL that is not loopback without --yes (exit 2), before reading any secret', async () => {
    const r = await runCli(['verify', SEED_MAPPING]);
    expect(r.code).toBe(2);
    expect(r.out).toBe('');
    expect(r.err).toBe('crm-sync verify: refusing to write a test lead to https://crm.example.com: it is not a loopback address. '
      + 'verify creates and updates a real lead there (marked crm_sync_test: true, never deleted); pass --yes to go ahead');
  });

  test('the refusal names the base URL without any user or password written in it', async () => {
    const r = await runCli(['verify', SEED_MAPPING, '--base-url', 'https://apiuser:s3cret@crm.example.com/api/']);
    expect(r.code).toBe(2);
    expect(r.err).toMatch(/^crm-sync verify: refusing to write a test lead to https:\/\/crm\.example\.com\/api: /);
    expect(r.err).not.toContain('s3cret');
  });

  test('with --yes, a plain-http private host still needs --allow-host (exit 2, nothing sent)', async () => {
    const r = await runCli(['verify', SEED_MAPPING, '--yes', '--base-url', 'http://10.1.2.3:8080']);
    expect(r.code).toBe(2);
    expect(r.err).toBe('crm-sync verify: http://10.1.2.3:8080 is not https and 10.1.2.3 is not on the allow-list (allow it with --allow-host 10.1.2.3)');
  });

  test('loopback is 127.0.0.0/8, ::1 and localhost; only a loopback host is allowed to the client automatically', () => {
    for (const host of ['127.0.0.1', '127.8.9.10', '[::1]', 'localhost', 'api.localhost', '::ffff:127.0.0.1']) expect(isLoopbackHost(host)).toBe(true);
    for (const host of ['10.0.0.1', '192.168.1.1', '::', 'example.com', 'localhost.example.com', '128.0.0.1']) expect(isLoopbackHost(host)).toBe(false);
    expect(decideTarget(new URL('http://127.0.0.1:9000'), { yes: false, allowHosts: [] })).toEqual({ allowHosts: ['127.0.0.1'] });
    expect(decideTarget(new URL('https://crm.example.com'), { yes: true, allowHosts: ['proxy.internal'] })).toEqual({ allowHosts: ['proxy.internal'] });
  });
});
