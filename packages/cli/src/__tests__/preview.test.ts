import { PRIYA, runCli, SEED_MAPPING, tempDir } from './harness';

const tmp = tempDir();
const contact = tmp.write('priya.json', JSON.stringify(PRIYA));
const SECRET = 'cli-preview-real-secret-9f3';

describe('crm-sync preview', () => {
  const saved = process.env.SEED_CRM_AUTH_KEY;
  beforeAll(() => { process.env.SEED_CRM_AUTH_KEY = SECRET; });
  afterAll(() => { if (saved === undefined) delete process.env.SEED_CRM_AUTH_KEY; else process.env.SEED_CRM_AUTH_KEY = saved; });

  test('prints fetch then create as curl commands, secrets masked, and the outcome', async () => {
    const r = await runCli(['preview', SEED_MAPPING, '--contact', contact]);
    expect(r.code).toBe(0);
    expect(r.err).toBe('');
    expect(r.out).toContain("# 1. fetch\ncurl -X GET 'https://crm.example.com/crm/fetch?phone=%2B919876543210&email=priya%40example.com'");
    expect(r.out).toContain("# 2. create\ncurl -X POST 'https://crm.example.com/crm/create'");
    expect(r.out).toContain(`--data-raw '{"phone":"+919876543210","name":"Priya Sharma","email":"priya@example.com","custom_fields":{"utm_campaign":"diwali"}}'`);
    expect(r.out.match(/-H 'Auth-Key: \*\*\*'/g)).toHaveLength(2);
    expect(r.out).toMatch(/# outcome: created, lead id example-lead-1$/);
    expect(r.out).not.toContain(SECRET);
  });

  test('a mapping whose CRM answers otherwise than the contract gets the answers of its own examples', async () => {
    const hubspot = SEED_MAPPING.replace('seed-contract.yaml', 'hubspot.yaml');
    const r = await runCli(['preview', hubspot, '--contact', contact]);
    expect(r.err).toBe('');
    expect(r.code).toBe(0);
    expect(r.out.split('\n')[0]).toBe("# Nothing was sent; secrets are shown as ***. The CRM's answers: examples[0] (new contact → search by email, then phone, finds nothing → create).");
    expect(r.out).toMatch(/# outcome: created, lead id 1001$/);
    // With a stored lead id, an example that starts from one.
    const update = await runCli(['preview', hubspot, '--contact', contact, '--lead-id', '77']);
    expect(update.out.split('\n')[0]).toMatch(/The CRM's answers: examples\[\d+\] \(.*\)\.$/);
    expect(update.out).toMatch(/# outcome: updated, lead id \d+$/);
  });

  test('reads the contact from standard input; --lead-id and --base-url give one update to that URL', async () => {
    const r = await runCli(['preview', SEED_MAPPING, '--contact', '-', '--lead-id', 'ld/7', '--base-url', 'http://127.0.0.1:9/api'], { stdin: JSON.stringify(PRIYA) });
    expect(r.code).toBe(0);
    expect(r.out).toContain("# 1. update\ncurl -X POST 'http://127.0.0.1:9/api/crm/update/ld%2F7'");
    expect(r.out).not.toContain('# 2.');
    expect(r.out).toContain('# outcome: updated, lead id ld/7');
  });

  test('--responses gives the canned answers: a found lead is updated', async () => {
    const responses = tmp.write('found.json', JSON.stringify({ fetch: { status: 200, body: { lead_id: 'L-77' } } }));
    const r = await runCli(['preview', SEED_MAPPING, '--contact', contact, '--responses', responses]);
    expect(r.code).toBe(0);
    expect(r.out).toContain("# 2. update\ncurl -X POST 'https://crm.example.com/crm/update/L-77'");
    expect(r.out).toContain('# outcome: updated, lead id L-77');
  });

  test('a simulated failure prints the requests made and the classified error, exit 1', async () => {
    const responses = tmp.write('down.json', JSON.stringify({ fetch: { status: 503, body: { status: 'Unavailable', reason: 'maintenance' } } }));
    const r = await runCli(['preview', SEED_MAPPING, '--contact', contact, '--responses', responses]);
    expect(r.code).toBe(1);
    expect(r.out).toContain('# 1. fetch');
    expect(r.out).not.toContain('# 2.');
    expect(r.err).toMatch(/# outcome: the sync would fail: ERR_CRM_UNAVAILABLE: .*step=fetch.*status=503.* reason: maintenance/);
  });

  test('a bad --responses file names the entry and the reason', async () => {
    const responses = tmp.write('bad.json', JSON.stringify({ fetch: { status: 'ok' }, delete: { status: 200 } }));
    const r = await runCli(['preview', SEED_MAPPING, '--contact', contact, '--responses', responses]);
    expect(r.code).toBe(1);
    expect(r.err).toContain('fetch.status: must be an HTTP status 100..599');
    expect(r.err).toContain('delete: is not an endpoint');
  });

  test('a bad contact names the field; malformed JSON names where it came from', async () => {
    const noPhone = tmp.write('no-phone.json', JSON.stringify({ contactId: 'c1', name: 'X' }));
    const bad = await runCli(['preview', SEED_MAPPING, '--contact', noPhone]);
    expect(bad.code).toBe(1);
    expect(bad.err).toMatch(/ERR_CONTACT_INVALID: phone: /);

    const notJson = await runCli(['preview', SEED_MAPPING, '--contact', '-'], { stdin: '{"contactId":' });
    expect(notJson.code).toBe(1);
    expect(notJson.err).toContain('contact standard input: not valid JSON');
  });

  test.each([
    [['preview', SEED_MAPPING], '--contact is required'],
    [['preview', '--contact', 'x.json'], 'missing <mapping>'],
    [['preview', SEED_MAPPING, '--contact', 'x.json', '--base-url', 'crm.example.com'], '--base-url "crm.example.com" is not an absolute URL'],
    [['preview', SEED_MAPPING, '--contact', 'x.json', '--bogus'], "Unknown option '--bogus'"],
  ])('usage error: %j', async (argv, message) => {
    const r = await runCli(argv);
    expect(r.code).toBe(2);
    expect(r.err).toContain(message);
    expect(r.err).toContain('Usage: crm-sync preview');
  });
});
