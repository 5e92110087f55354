import {
  parseSoql, startHubSpotEmulator, startLegacyFormCrm, startPipedriveEmulator, startSalesforceEmulator, startZohoEmulator,
  type Emulator,
} from '../index';

// The vendor shapes and failure modes the mappings in mappings/ rely on, checked over real HTTP.

const running: Emulator<unknown>[] = [];
async function start<E extends Emulator<any>>(p: Promise<E>): Promise<E> {
  const e = await p;
  running.push(e);
  return e;
}
afterEach(async () => {
  await Promise.all(running.splice(0).map((e) => e.close()));
});

async function call(url: string, init: { method?: string; headers?: Record<string, string>; json?: unknown; form?: string } = {}) {
  const headers = { ...init.headers };
  let body: string | undefined;
  if (init.json !== undefined) { body = JSON.stringify(init.json); headers['content-type'] = 'application/json'; }
  if (init.form !== undefined) { body = init.form; headers['content-type'] = 'application/x-www-form-urlencoded'; }
  const res = await fetch(url, { method: init.method ?? (body ? 'POST' : 'GET'), headers, body });
  const text = await res.text();
  return { status: res.status, headers: res.headers, text, json: text ? JSON.parse(text) : undefined };
}

describe('HubSpot', () => {
  it('creates, refuses a duplicate email with 409 CONFLICT naming the id, and updates with PATCH', async () => {
    const hs = await start(startHubSpotEmulator());
    const auth = { authorization: `Bearer ${hs.token}` };
    const c = await call(`${hs.url}/crm/v3/objects/contacts`, { headers: auth, json: { properties: { email: 'a@x.io', firstname: 'A' } } });
    expect(c.status).toBe(201);
    expect(c.headers.get('x-hubspot-ratelimit-max')).toBe('100');
    const dup = await call(`${hs.url}/crm/v3/objects/contacts`, { headers: auth, json: { properties: { email: 'A@X.io' } } });
    expect(dup.status).toBe(409);
    expect(dup.json).toMatchObject({ status: 'error', category: 'CONFLICT', message: `Contact already exists. Existing ID: ${c.json.id}` });
    const u = await call(`${hs.url}/crm/v3/objects/contacts/${c.json.id}`, { method: 'PATCH', headers: auth, json: { properties: { firstname: '' } } });
    expect(u.status).toBe(200);
    expect(hs.records()[0]!.properties.firstname).toBeUndefined();
    expect(hs.requests()[0]!.headers.authorization).toBe('Bearer ***');
  });

  it('hides new contacts from search for searchLagMs, 404s merged ids, and 429s past the window', async () => {
    let now = 1_000_000;
    const hs = await start(startHubSpotEmulator({ searchLagMs: 500, now: () => now, rateLimit: { max: 2, intervalMs: 1000 } }));
    const auth = { authorization: `Bearer ${hs.token}` };
    const search = { filterGroups: [{ filters: [{ propertyName: 'email', operator: 'EQ', value: 'a@x.io' }] }] };
    const a = await call(`${hs.url}/crm/v3/objects/contacts`, { headers: auth, json: { properties: { email: 'a@x.io' } } });
    expect((await call(`${hs.url}/crm/v3/objects/contacts/search`, { headers: auth, json: search })).json).toEqual({ total: 0, results: [] });
    now += 500;
    const found = await call(`${hs.url}/crm/v3/objects/contacts/search`, { headers: auth, json: search });
    expect(found.json.results.map((r: { id: string }) => r.id)).toEqual([a.json.id]);
    expect(found.headers.get('x-hubspot-ratelimit-remaining')).toBeNull();
    const b = await call(`${hs.url}/crm/v3/objects/contacts`, { headers: auth, json: { properties: { email: 'b@x.io' } } });
    expect(b.headers.get('x-hubspot-ratelimit-remaining')).toBe('0');
    expect(hs.mergeContacts(a.json.id, b.json.id)).toBe(true);
    const limited = await call(`${hs.url}/crm/v3/objects/contacts/${b.json.id}`, { method: 'PATCH', headers: auth, json: { properties: {} } });
    expect(limited.status).toBe(429);
    expect(limited.json).toMatchObject({ errorType: 'RATE_LIMIT', policyName: 'TEN_SECONDLY_ROLLING' });
    now += 1000;
    const gone = await call(`${hs.url}/crm/v3/objects/contacts/${b.json.id}`, { method: 'PATCH', headers: auth, json: { properties: {} } });
    expect(gone.status).toBe(404);
  });
});

describe('Zoho', () => {
  it('upserts by duplicate_check_fields in order and reports failed records inside a 202', async () => {
    const z = await start(startZohoEmulator());
    const auth = { authorization: `Zoho-oauthtoken ${z.token}` };
    const url = `${z.url}/crm/v2/Leads/upsert`;
    const ins = await call(url, { headers: auth, json: { data: [{ Last_Name: 'Sharma', Email: 'p@x.io', Phone: '+911' }], duplicate_check_fields: ['Email', 'Phone'] } });
    expect(ins.status).toBe(201);
    expect(ins.json.data[0]).toMatchObject({ code: 'SUCCESS', action: 'insert', message: 'record added', status: 'success' });
    const upd = await call(url, { headers: auth, json: { data: [{ Last_Name: 'Sharma', Email: 'new@x.io', Phone: '+911' }], duplicate_check_fields: ['Email', 'Phone'] } });
    expect(upd.status).toBe(200);
    expect(upd.json.data[0]).toMatchObject({ action: 'update', duplicate_field: 'Phone', details: { id: ins.json.data[0].details.id } });
    const bad = await call(url, { headers: auth, json: { data: [{ Email: 'q@x.io' }] } });
    expect(bad.status).toBe(202);
    expect(bad.json.data[0]).toEqual({ code: 'MANDATORY_NOT_FOUND', details: { api_name: 'Last_Name' }, message: 'required field not found', status: 'error' });
    expect((await call(url, { headers: { authorization: `Bearer ${z.token}` }, json: { data: [] } })).status).toBe(401);
    expect((await call(`${z.url}/crm/v2/Leads/search?email=none@x.io`, { headers: auth })).status).toBe(204);
    expect(z.records()).toHaveLength(1);
  });
});

describe('Pipedrive', () => {
  it('takes the token in the query, stores arrays and hex custom fields, searches exactly, never de-duplicates', async () => {
    const pd = await start(startPipedriveEmulator());
    const key = 'a'.repeat(40);
    const person = { name: 'Priya', email: [{ value: 'p@x.io', primary: true, label: 'work' }], phone: ['+919876543210'], [key]: 'diwali' };
    const one = await call(`${pd.url}/v1/persons?api_token=${pd.token}`, { json: person });
    const two = await call(`${pd.url}/v1/persons?api_token=${pd.token}`, { json: person });
    expect([one.status, two.status]).toEqual([201, 201]);
    expect(one.json.data).toMatchObject({ id: 1, phone: [{ value: '+919876543210', primary: true, label: '' }], [key]: 'diwali' });
    const s = await call(`${pd.url}/v1/persons/search?term=P%40X.io&fields=email&exact_match=true&api_token=${pd.token}`);
    expect(s.json.data.items.map((i: { item: { id: number } }) => i.item.id)).toEqual([1, 2]);
    expect((await call(`${pd.url}/v1/persons?api_token=nope`, { json: person })).json).toMatchObject({ success: false, error: 'unauthorized access' });
    pd.deleteRecord('1');
    const gone = await call(`${pd.url}/v1/persons/1?api_token=${pd.token}`, { method: 'PUT', json: { name: 'X' } });
    expect([gone.status, gone.json.error]).toEqual([404, 'Person not found']);
    expect(pd.requests()[0]!.query.api_token).toBe('***');
  });
});

describe('Salesforce', () => {
  it('creates (201), queries by SOQL, PATCHes with 204, reports usage and array errors', async () => {
    const sf = await start(startSalesforceEmulator());
    const auth = { authorization: `Bearer ${sf.token}` };
    const base = `${sf.url}/services/data/v59.0`;
    const missing = await call(`${base}/sobjects/Lead`, { headers: auth, json: { Email: 'a@x.io' } });
    expect(missing.json).toEqual([{ message: 'Required fields are missing: [LastName, Company]', errorCode: 'REQUIRED_FIELD_MISSING', fields: ['LastName', 'Company'] }]);
    const c = await call(`${base}/sobjects/Lead`, { headers: auth, json: { LastName: 'B', Company: 'C', Email: "o'brien@x.io" } });
    expect(c.status).toBe(201);
    expect(c.json).toEqual({ id: expect.stringMatching(/^00Q\w{15}$/), success: true, errors: [] });
    expect(c.headers.get('sforce-limit-info')).toBe('api-usage=2/15000');
    const q = (soql: string) => call(`${base}/query?q=${encodeURIComponent(soql)}`, { headers: auth });
    const found = await q("SELECT Id FROM Lead WHERE Email = 'O\\'Brien@x.io' ORDER BY CreatedDate ASC LIMIT 2");
    expect(found.json).toMatchObject({ totalSize: 1, done: true, records: [{ Id: c.json.id, attributes: { type: 'Lead' } }] });
    const malformed = await q("SELECT Id FROM Lead WHERE Email = 'o'brien@x.io'");
    expect([malformed.status, malformed.json[0].errorCode]).toEqual([400, 'MALFORMED_QUERY']);
    const patched = await call(`${base}/sobjects/Lead/${c.json.id}`, { method: 'PATCH', headers: auth, json: { Email: null } });
    expect([patched.status, patched.text]).toEqual([204, '']);
    sf.deleteRecord(c.json.id);
    const gone = await call(`${base}/sobjects/Lead/${c.json.id}`, { method: 'PATCH', headers: auth, json: { City: 'X' } });
    expect([gone.status, gone.json[0].errorCode]).toEqual([404, 'ENTITY_IS_DELETED']);
  });

  it('parses the SOQL slice strictly', () => {
    expect(parseSoql("select Id, Email from Lead where Phone = '+91\\\\x'")).toEqual({ fields: ['Id', 'Email'], object: 'Lead', where: { field: 'Phone', value: '+91\\x' } });
    expect(() => parseSoql("SELECT Id FROM Lead WHERE Email = 'a\\qb'")).toThrow(/Illegal character sequence/);
    expect(() => parseSoql("SELECT Id FROM Lead WHERE Email = 'a")).toThrow(/unterminated/);
  });
});

describe('legacy form CRM', () => {
  it('answers 200 for every outcome and takes only form bodies with the key inside', async () => {
    const lf = await start(startLegacyFormCrm());
    const gw = (action: string) => `${lf.url}/gateway.php?action=${action}`;
    const created = await call(gw('create'), { form: `api_key=${lf.token}&name=Priya&phone=919876543210&fields[city]=Pune` });
    expect([created.status, created.json]).toEqual([200, { result: 'ok', id: '5001' }]);
    expect(created.headers.get('content-type')).toContain('text/html');
    expect((await call(gw('find'), { form: `api_key=${lf.token}&phone=919876543210` })).json).toEqual({ result: 'ok', id: '5001' });
    expect((await call(gw('find'), { form: `api_key=${lf.token}&email=none@x.io` })).json).toEqual({ result: 'not_found' });
    expect((await call(gw('create'), { json: { api_key: lf.token, name: 'P', phone: '1' } })).json.result).toBe('error');
    expect((await call(gw('create'), { form: `api_key=${lf.token}&name=P&phone=%2B919876543210` })).json.message).toMatch(/digits only/);
    expect((await call(gw('update'), { form: `api_key=wrong&id=5001` })).json).toEqual({ result: 'error', message: 'access denied' });
    expect((await call(gw('update'), { form: `api_key=${lf.token}&id=999&name=X` })).json).toEqual({ result: 'not_found' });
    expect(lf.records()).toEqual([{ id: '5001', name: 'Priya', phone: '919876543210', fields: { city: 'Pune' } }]);
  });

  it('applies injected faults in the vendor shape', async () => {
    const lf = await start(startLegacyFormCrm());
    lf.addFault({ route: 'create', status: 503, retryAfterSec: 2, times: 1 });
    const r = await call(`${lf.url}/gateway.php?action=create`, { form: `api_key=${lf.token}&name=P&phone=919876543210` });
    expect([r.status, r.headers.get('retry-after'), r.json.result]).toEqual([503, '2', 'error']);
  });
});
