import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { parseDocument } from 'yaml';
import {
  startHubSpotEmulator, startLegacyFormCrm, startPipedriveEmulator, startSalesforceEmulator, startZohoEmulator, type Emulator,
} from '@crm-sync/testkit';
import { REPO, runCli, tempDir } from './harness';

const tmp = tempDir();

interface Vendor {
  mapping: string;
  start(): Promise<Emulator<unknown>>;
  /** The summary line of a passing run: an upsert-only CRM skips the fetch steps. */
  passed: string;
}

// HubSpot's search trails its creates: verify must wait within the mapping's searchLagMs, not report "not found".
const VENDORS: Vendor[] = [
  { mapping: 'hubspot', start: () => startHubSpotEmulator({ searchLagMs: 300 }), passed: 'PASSED: 6 steps' },
  { mapping: 'zoho', start: () => startZohoEmulator(), passed: 'PASSED: 2 steps, 4 skipped' },
  // No leadFields: the read back (what reconcile compares) is skipped.
  { mapping: 'pipedrive', start: () => startPipedriveEmulator(), passed: 'PASSED: 5 steps, 1 skipped' },
  { mapping: 'salesforce', start: () => startSalesforceEmulator(), passed: 'PASSED: 6 steps' },
  { mapping: 'legacy-form', start: () => startLegacyFormCrm(), passed: 'PASSED: 5 steps, 1 skipped' },
];

/** The env variable the mapping reads its secret from: the test sets it to the emulator's token. */
function secretEnv(file: string): string {
  const ref = String(parseDocument(readFileSync(file, 'utf8')).getIn(['auth', 'secret']));
  const m = /^env:(.+)$/.exec(ref);
  if (!m) throw new Error(`${file}: auth.secret ${ref} is not an env: reference`);
  return m[1];
}

/** The mapping with the write endpoint's (create, else upsert) leadId reader pointed at a field no answer has. */
function withBrokenLeadId(file: string): { file: string; endpoint: string } {
  const doc = parseDocument(readFileSync(file, 'utf8'));
  const endpoint = doc.hasIn(['endpoints', 'create']) ? 'create' : 'upsert';
  doc.setIn(['endpoints', endpoint, 'responses', 'leadId'], 'body.no_such_field');
  return { file: tmp.write(`broken-${file.split('/').pop()}`, doc.toString()), endpoint };
}

/** An emulator for the describe block with the mapping's secret variable set to its token; emptied before each test. */
function useEmulator(file: string, start: () => Promise<Emulator<unknown>>): () => Emulator<unknown> {
  let crm: Emulator<unknown>;
  let env: string;
  let saved: string | undefined;
  beforeAll(async () => {
    crm = await start();
    env = secretEnv(file);
    saved = process.env[env];
    process.env[env] = crm.token;
  });
  afterAll(async () => {
    if (saved === undefined) delete process.env[env]; else process.env[env] = saved;
    await crm.close();
  });
  beforeEach(() => crm.reset());
  return () => crm;
}

describe.each(VENDORS)('crm-sync verify against the $mapping emulator', ({ mapping, start, passed }) => {
  const file = join(REPO, 'mappings', `${mapping}.yaml`);
  const crm = useEmulator(file, start);

  test('passes every step it can run, with one record; the token is in no output', async () => {
    const r = await runCli(['verify', file, '--base-url', crm().url]);
    expect(r.err).toBe('');
    expect(r.out.split('\n')).toContain(passed);
    expect(r.code).toBe(0);
    expect(crm().records()).toHaveLength(1);
    expect(r.out).not.toContain(crm().token);
  });

  test('a leadId reader on the wrong field fails step 1, naming the reader', async () => {
    const broken = withBrokenLeadId(file);
    const r = await runCli(['verify', broken.file, '--base-url', crm().url]);
    expect(r.code).toBe(1);
    expect(r.out).toMatch(/^step 1 \((create|upsert)\): /m);
    expect(r.out).toContain(`  reader: endpoints.${broken.endpoint}.responses.leadId = body.no_such_field`);
  });

  test('a CRM answering 503 fails step 1 with the failed reader and the 503', async () => {
    crm().addFault({ route: '*', status: 503 });
    const r = await runCli(['verify', file, '--base-url', crm().url]);
    expect(r.code).toBe(1);
    expect(r.out).toMatch(/^step 1 \((create|upsert)\)( at its \w+ call)?: ERR_CRM_UNAVAILABLE: the CRM answered 503/m);
    expect(r.out).toMatch(/^ {2}reader: \S*responses\.failed = /m);
    expect(r.out).toMatch(/^ {2}got: {4}503 /m);
  });
});

/** The table rows of step `n`: its first row and the call rows under it. */
function rowsOfStep(out: string, n: number): string[] {
  const lines = out.split('\n');
  const first = lines.findIndex((l) => l.startsWith(`${n} `));
  const end = lines.findIndex((l, i) => i > first && !/^\s/.test(l));
  return lines.slice(first, end);
}

describe('crm-sync verify against a HubSpot whose search lags behind its creates', () => {
  const file = join(REPO, 'mappings', 'hubspot.yaml');
  const crm = useEmulator(file, () => startHubSpotEmulator({ searchLagMs: 400 }));

  test('fetch by phone searches again until the new contact is searchable, within the mapping\'s searchLagMs', async () => {
    const r = await runCli(['verify', file, '--base-url', crm().url]);
    expect(r.code).toBe(0);
    const searches = rowsOfStep(r.out, 2);
    expect(searches.length).toBeGreaterThan(1);
    expect(searches[0]).toMatch(/^2\s+fetch by phone\s+POST \S+\/search\s+200\s+PASS found lead 1001\s+\{"total":0,"results":\[\]\}$/);
    expect(searches.at(-1)).toContain('{"total":1,');
    expect(crm().records()).toHaveLength(1);
  });
});
