import http from 'node:http';
import { startReferenceCrm, type ReferenceCrm, type ReferenceCrmOptions } from '../index';

// One keep-alive agent for the file: the server has to behave over reused connections.
const agent = new http.Agent({ keepAlive: true });
afterAll(() => agent.destroy());

interface Res {
  status: number;
  headers: http.IncomingHttpHeaders;
  text: string;
  json: any;
}

interface CallOpts {
  method?: string;
  headers?: Record<string, string>;
  /** Sent as JSON. */
  body?: unknown;
  /** Sent as application/x-www-form-urlencoded. */
  form?: string;
  timeoutMs?: number;
}

function call(url: string, opts: CallOpts = {}): Promise<Res> {
  const headers: Record<string, string> = { ...opts.headers };
  let payload: string | undefined;
  if (opts.form !== undefined) {
    payload = opts.form;
    headers['content-type'] ??= 'application/x-www-form-urlencoded';
  } else if (opts.body !== undefined) {
    payload = typeof opts.body === 'string' ? opts.body : JSON.stringify(opts.body);
    headers['content-type'] ??= 'application/json';
  }
  // Node does not frame a GET body by default; without this the server would never see it.
  if (payload !== undefined) headers['content-length'] = String(Buffer.byteLength(payload));
  return new Promise((resolve, reject) => {
    const req = http.request(url, { method: opts.method ?? (payload ? 'POST' : 'GET'), headers, agent }, (res) => {
      const chunks: Buffer[] = [];
      res.on('data', (c: Buffer) => chunks.push(c));
      res.on('end', () => {
        const text = Buffer.concat(chunks).toString('utf8');
        let json: unknown;
        try {
          json = JSON.parse(text);
        } catch {
          json = undefined;
        }
        resolve({ status: res.statusCode!, headers: res.headers, text, json });
      });
      res.on('error', reject);
    });
    req.on('error', reject);
    if (opts.timeoutMs) req.setTimeout(opts.timeoutMs, () => req.destroy(new Error('client timeout')));
    req.end(payload);
  });
}

const KEY = { 'Auth-Key': 'test-key' };
const servers: ReferenceCrm[] = [];
async function start(opts?: ReferenceCrmOptions): Promise<ReferenceCrm> {
  const crm = await startReferenceCrm(opts);
  servers.push(crm);
  return crm;
}
afterEach(async () => {
  await Promise.all(servers.splice(0).map((s) => s.close()));
});

const create = (crm: ReferenceCrm, body: unknown, headers: Record<string, string> = KEY) =>
  call(`${crm.url}/crm/create`, { body, headers });

describe('create / fetch / update', () => {
  it('round-trips a lead as JSON, merging custom fields on update', async () => {
    const crm = await start();
    expect(crm.url).toBe(`http://127.0.0.1:${crm.port}`);

    const c = await create(crm, { phone: '+919876543210', name: 'Priya', email: 'priya@example.com', custom_fields: { crm_a: '1', crm_b: 2 } });
    expect(c.status).toBe(200);
    expect(c.json).toEqual({ lead_id: 'L000001', status: 'Successfully Created' });

    const f = await call(`${crm.url}/crm/fetch?phone=${encodeURIComponent('+919876543210')}`, { headers: KEY });
    expect(f.status).toBe(200);
    expect(f.json).toEqual({
      lead_id: 'L000001',
      lead_fields: { phone: '+919876543210', name: 'Priya', email: 'priya@example.com', custom_fields: { crm_a: '1', crm_b: 2 } },
    });

    const u = await call(`${crm.url}/crm/update/L000001`, {
      body: { name: 'Priya S', email: null, custom_fields: { crm_a: null, crm_b: '', crm_c: 'x' } },
      headers: KEY,
    });
    expect(u.status).toBe(200);
    expect(u.json).toEqual({ lead_id: 'L000001', status: 'Successfully Updated' });
    const [lead] = crm.leads();
    expect(lead).toMatchObject({ lead_id: 'L000001', phone: '+919876543210', name: 'Priya S', custom_fields: { crm_c: 'x' }, version: 2 });
    expect(lead!.email).toBeUndefined();

    const put = await call(`${crm.url}/crm/update/L000001`, { method: 'PUT', body: { custom_fields: { crm_d: true } }, headers: KEY });
    expect(put.status).toBe(200);
    expect(crm.leads()[0]!.custom_fields).toEqual({ crm_c: 'x', crm_d: true });
    expect(crm.leads()[0]!.version).toBe(3);
  });

  it('edits and deletes leads behind the client\'s back (what reconcile tests need)', async () => {
    const crm = await start();
    await call(`${crm.url}/crm/create`, { body: { phone: '+919876543210', name: 'Priya', custom_fields: { city: 'Mumbai' } }, headers: KEY });
    crm.editLead('L000001', { name: 'Edited', custom_fields: { city: 'Pune' } });
    const f = await call(`${crm.url}/crm/fetch?lead_id=L000001`, { headers: KEY });
    expect(f.json.lead_fields).toEqual({ phone: '+919876543210', name: 'Edited', custom_fields: { city: 'Pune' } });
    crm.deleteLead('L000001');
    expect(crm.leads()).toEqual([]);
    expect((await call(`${crm.url}/crm/fetch?lead_id=L000001`, { headers: KEY })).status).toBe(404);
    expect((await call(`${crm.url}/crm/update/L000001`, { body: { name: 'x' }, headers: KEY })).status).toBe(404);
    expect(() => crm.deleteLead('L000001')).toThrow(/no lead "L000001"/);
    expect(() => crm.editLead('L000009', { name: 'x' })).toThrow(/no lead "L000009"/);
  });

  it('parses form bodies with nested keys and awkward characters (global fetch)', async () => {
    const crm = await start();
    const form = new URLSearchParams({
      phone: '+447700900123',
      name: 'Zoë & Ana = Ω 🙂',
      email: 'a+b@example.com',
      'custom_fields[crm_campaign_code]': 'diwali+2024&more=yes',
      'custom_fields[city]': 'São Paulo',
    });
    const res = await fetch(`${crm.url}/crm/create`, { method: 'POST', body: form, headers: KEY });
    expect(res.status).toBe(200);
    const { lead_id } = (await res.json()) as { lead_id: string };
    expect(crm.leads()[0]).toMatchObject({
      lead_id,
      phone: '+447700900123',
      name: 'Zoë & Ana = Ω 🙂',
      email: 'a+b@example.com',
      custom_fields: { crm_campaign_code: 'diwali+2024&more=yes', city: 'São Paulo' },
    });

    // Form update: an empty custom field removes it.
    const upd = await fetch(`${crm.url}/crm/update/${lead_id}`, {
      method: 'POST',
      body: new URLSearchParams({ 'custom_fields[city]': '', 'custom_fields[tier]': 'gold' }),
      headers: KEY,
    });
    expect(upd.status).toBe(200);
    expect(crm.leads()[0]!.custom_fields).toEqual({ crm_campaign_code: 'diwali+2024&more=yes', tier: 'gold' });

    // Fetch by email through a POST form body.
    const f = await fetch(`${crm.url}/crm/fetch`, { method: 'POST', body: new URLSearchParams({ email: 'a+b@example.com' }), headers: KEY });
    expect(f.status).toBe(200);
    expect(((await f.json()) as { lead_id: string }).lead_id).toBe(lead_id);
  });

  it('fetches by query, JSON body on GET, and in order lead_id, phone, email (oldest first)', async () => {
    const crm = await start();
    await create(crm, { phone: '+15550000001', name: 'A', email: 'same@example.com' });
    await create(crm, { phone: '+15550000002', name: 'B', email: 'same@example.com' });
    await create(crm, { phone: '+15550000002', name: 'C' });

    const id = async (url: string, opts: CallOpts = {}) => (await call(url, { headers: KEY, ...opts })).json.lead_id;
    expect(await id(`${crm.url}/crm/fetch?email=SAME%40example.com`)).toBe('L000001');
    expect(await id(`${crm.url}/crm/fetch?phone=%2B15550000002`)).toBe('L000002');
    expect(await id(`${crm.url}/crm/fetch?lead_id=L000003&phone=%2B15550000001`)).toBe('L000003');
    expect(await id(`${crm.url}/crm/fetch?lead_id=L999999&phone=%2B15550000001`)).toBe('L000001');
    expect(await id(`${crm.url}/crm/fetch`, { method: 'GET', body: { phone: '+15550000002' } })).toBe('L000002');
    // An unencoded '+' in a query string is a space: the CRM does not find the lead.
    expect((await call(`${crm.url}/crm/fetch?phone=+15550000001`, { headers: KEY })).status).toBe(404);
  });

  it('answers the contract failures', async () => {
    const crm = await start();
    const nf = await call(`${crm.url}/crm/fetch?phone=%2B15550000009`, { headers: KEY });
    expect(nf.status).toBe(404);
    expect(nf.json).toEqual({ status: 'Not Found', reason: 'No matching lead' });

    const none = await call(`${crm.url}/crm/fetch`, { headers: KEY });
    expect(none.status).toBe(400);

    const upd = await call(`${crm.url}/crm/update/L000042`, { body: { name: 'x' }, headers: KEY });
    expect(upd.status).toBe(404);
    expect(upd.json).toEqual({ status: 'Update Failed', reason: 'No lead with id L000042' });

    const noPhone = await create(crm, { name: 'x' });
    expect(noPhone.status).toBe(400);
    expect(noPhone.json).toEqual({ status: 'Creation Failed', reason: expect.stringContaining('phone') });
    const badPhone = await create(crm, { name: 'x', phone: '919876543210' });
    expect(badPhone.status).toBe(400);
    expect(badPhone.json.reason).toMatch(/phone.*E\.164/);
    const noName = await create(crm, { phone: '+919876543210' });
    expect(noName.status).toBe(400);
    expect(noName.json.reason).toMatch(/name/);
    const badJson = await create(crm, '{"phone": ');
    expect(badJson.status).toBe(400);
    expect(badJson.json).toEqual({ status: 'Creation Failed', reason: expect.stringMatching(/Invalid JSON/) });

    const wrongMethod = await call(`${crm.url}/crm/create`, { headers: KEY });
    expect(wrongMethod.status).toBe(405);
    expect(wrongMethod.headers.allow).toBe('POST');
    expect((await call(`${crm.url}/crm/delete`, { headers: KEY })).status).toBe(404);
    expect((await call(`${crm.url}/crm/upsert`, { body: {}, headers: KEY })).status).toBe(404);
    expect(crm.leads()).toEqual([]);
  });

  it('answers 413 above maxBodyBytes', async () => {
    const crm = await start({ maxBodyBytes: 1000 });
    const res = await create(crm, { phone: '+919876543210', name: 'x'.repeat(5000) });
    expect(res.status).toBe(413);
    expect(res.json.status).toBe('Creation Failed');
    expect(crm.leads()).toEqual([]);
    // The connection is still usable afterwards.
    expect((await create(crm, { phone: '+919876543210', name: 'ok' })).status).toBe(200);
  });

  it('serves under basePath', async () => {
    const crm = await start({ basePath: '/api/v2/' });
    expect(crm.url).toBe(`http://127.0.0.1:${crm.port}/api/v2`);
    expect((await create(crm, { phone: '+919876543210', name: 'x' })).status).toBe(200);
    expect((await call(`http://127.0.0.1:${crm.port}/crm/create`, { body: {}, headers: KEY })).status).toBe(404);
  });
});

describe('auth', () => {
  const lead = { phone: '+919876543210', name: 'x' };

  it('auth-key: default header, custom header, refuses without echoing the secret', async () => {
    const crm = await start();
    expect((await create(crm, lead, { 'auth-key': 'test-key' })).status).toBe(200);
    const wrong = await create(crm, lead, { 'Auth-Key': 'nope-secret' });
    expect(wrong.status).toBe(401);
    expect(wrong.json.status).toBe('Unauthorized');
    expect(wrong.text).not.toContain('nope-secret');
    expect(wrong.text).not.toContain('test-key');
    expect((await create(crm, lead, {})).status).toBe(401);

    const custom = await start({ auth: { style: 'auth-key', key: 'k1', header: 'X-Api-Key' } });
    expect((await create(custom, lead, { 'X-Api-Key': 'k1' })).status).toBe(200);
    expect((await create(custom, lead, { 'Auth-Key': 'k1' })).status).toBe(401);
  });

  it('bearer', async () => {
    const crm = await start({ auth: { style: 'bearer', key: 'tok' } });
    expect((await create(crm, lead, { Authorization: 'Bearer tok' })).status).toBe(200);
    expect((await create(crm, lead, { Authorization: 'Bearer tok2' })).status).toBe(401);
    expect((await create(crm, lead, { Authorization: 'tok' })).status).toBe(401);
    expect(crm.requests()[0]!.headers.authorization).toBe('***');
  });

  it('body-secret: body field or query parameter, never stored, masked in the log', async () => {
    const crm = await start({ auth: { style: 'body-secret', key: 's3cret' } });
    expect((await create(crm, { ...lead, secret: 's3cret' }, {})).status).toBe(200);
    expect((await call(`${crm.url}/crm/create?secret=s3cret`, { form: 'phone=%2B919876543211&name=y' })).status).toBe(200);
    expect((await create(crm, { ...lead, secret: 'wrong' }, {})).status).toBe(401);
    expect((await create(crm, lead, {})).status).toBe(401);
    expect((await call(`${crm.url}/crm/fetch?phone=%2B919876543210&secret=s3cret`)).status).toBe(200);

    const custom = await start({ auth: { style: 'body-secret', key: 'k', field: 'api_token' } });
    expect((await create(custom, { ...lead, api_token: 'k' }, {})).status).toBe(200);

    expect(crm.leads()).toHaveLength(2);
    expect(JSON.stringify(crm.leads())).not.toContain('s3cret');
    expect(JSON.stringify(crm.requests())).not.toContain('s3cret');
    expect(crm.requests()[0]!.body).toMatchObject({ secret: '***' });
    expect(crm.requests()[1]!.query).toEqual({ secret: '***' });
  });

  it('none', async () => {
    const crm = await start({ auth: { style: 'none' } });
    expect((await create(crm, lead, {})).status).toBe(200);
  });

  it('masks the auth header in the request log', async () => {
    const crm = await start();
    await create(crm, lead);
    const [r] = crm.requests();
    expect(r).toMatchObject({ seq: 1, route: 'create', method: 'POST', path: '/crm/create', status: 200, body: lead });
    expect(r!.headers['auth-key']).toBe('***');
    expect(r!.durationMs).toBeGreaterThan(0);
  });
});

describe('variants', () => {
  it('upsert decides by lead_id, then phone, then email', async () => {
    const crm = await start({ upsert: true, fetch: false });
    const up = (body: unknown) => call(`${crm.url}/crm/upsert`, { body, headers: KEY });

    expect((await up({ phone: '+15550000001', name: 'A', email: 'a@example.com' })).json).toEqual({ lead_id: 'L000001', status: 'Successfully Created' });
    expect((await up({ phone: '+15550000001', name: 'A2' })).json).toEqual({ lead_id: 'L000001', status: 'Successfully Updated' });
    expect((await up({ phone: '+15550000002', email: 'a@example.com', name: 'A3' })).json.status).toBe('Successfully Updated');
    expect((await up({ lead_id: 'L000001', custom_fields: { x: 1 } })).json.status).toBe('Successfully Updated');
    const missing = await up({ lead_id: 'L000099', name: 'z' });
    expect(missing.status).toBe(404);
    expect(missing.json.status).toBe('Update Failed');
    expect((await up({ phone: '+15550000003', name: 'B' })).json).toEqual({ lead_id: 'L000002', status: 'Successfully Created' });

    expect(crm.leads().map((l) => [l.lead_id, l.phone, l.name, l.custom_fields])).toEqual([
      ['L000001', '+15550000002', 'A3', { x: 1 }],
      ['L000002', '+15550000003', 'B', {}],
    ]);
    expect((await call(`${crm.url}/crm/fetch?phone=%2B15550000003`, { headers: KEY })).status).toBe(404);
  });

  it('dedupeOnCreate: off makes duplicates, on updates the existing lead', async () => {
    const dupes = await start();
    await create(dupes, { phone: '+15550000001', name: 'A' });
    await create(dupes, { phone: '+15550000001', name: 'A' });
    expect(dupes.leads()).toHaveLength(2);

    const dedupe = await start({ dedupeOnCreate: true });
    await create(dedupe, { phone: '+15550000001', name: 'A', email: 'a@example.com' });
    const byPhone = await create(dedupe, { phone: '+15550000001', name: 'A2' });
    const byEmail = await create(dedupe, { phone: '+15550000002', name: 'A3', email: 'A@example.com' });
    expect(byPhone.json).toEqual({ lead_id: 'L000001', status: 'Successfully Created' });
    expect(byEmail.json.lead_id).toBe('L000001');
    expect(dedupe.leads()).toEqual([expect.objectContaining({ phone: '+15550000002', name: 'A3', version: 3 })]);
  });

  it('fetchLagMs: fetch does not see a new lead until the lag has passed; update sees it at once', async () => {
    const crm = await start({ fetchLagMs: 300 });
    const { lead_id } = (await create(crm, { phone: '+15550000001', name: 'A', email: 'a@example.com' })).json;
    for (const q of ['phone=%2B15550000001', 'email=a%40example.com', `lead_id=${lead_id}`]) {
      expect((await call(`${crm.url}/crm/fetch?${q}`, { headers: KEY })).status).toBe(404);
    }
    expect((await call(`${crm.url}/crm/update/${lead_id}`, { body: { name: 'B' }, headers: KEY })).status).toBe(200);
    await new Promise((r) => setTimeout(r, 320));
    const found = await call(`${crm.url}/crm/fetch?phone=%2B15550000001`, { headers: KEY });
    expect(found.status).toBe(200);
    expect(found.json).toMatchObject({ lead_id, lead_fields: { name: 'B' } });
  });

  it('leadIdPrefix with "/" needs the id percent-encoded in the update path', async () => {
    const crm = await start({ leadIdPrefix: 'ld/' });
    const { lead_id } = (await create(crm, { phone: '+15550000001', name: 'A' })).json;
    expect(lead_id).toBe('ld/000001');
    const ok = await call(`${crm.url}/crm/update/${encodeURIComponent(lead_id)}`, { body: { name: 'B' }, headers: KEY });
    expect(ok.status).toBe(200);
    expect(ok.json.lead_id).toBe('ld/000001');
    expect(crm.requests()[1]!.path).toBe('/crm/update/ld%2F000001');
    expect((await call(`${crm.url}/crm/update/${lead_id}`, { body: { name: 'C' }, headers: KEY })).status).toBe(404);
    expect(crm.leads()[0]!.name).toBe('B');
  });
});

describe('faults', () => {
  const lead = { phone: '+919876543210', name: 'x' };

  it('status with times, then normal again; checked in insertion order', async () => {
    const crm = await start();
    crm.addFault({ route: 'fetch', status: 500 });
    crm.addFault({ route: 'create', status: 503, times: 2 });
    crm.addFault({ route: '*', status: 502 });
    const a = await create(crm, lead);
    expect(a.status).toBe(503);
    expect(a.json).toEqual({ status: 'Creation Failed', reason: 'injected' });
    expect((await create(crm, lead)).status).toBe(503);
    expect((await create(crm, lead)).status).toBe(502);
    expect(crm.leads()).toEqual([]);
    crm.clearFaults();
    expect((await create(crm, lead)).status).toBe(200);
    expect(crm.requests().map((r) => r.status)).toEqual([503, 503, 502, 200]);
  });

  it('429 with Retry-After', async () => {
    const crm = await start();
    crm.addFault({ route: 'update', status: 429, retryAfterSec: 7, times: 1 });
    await create(crm, lead);
    const r = await call(`${crm.url}/crm/update/L000001`, { body: { name: 'y' }, headers: KEY });
    expect(r.status).toBe(429);
    expect(r.headers['retry-after']).toBe('7');
    expect(r.json.status).toBe('Update Failed');
    expect(crm.leads()[0]!.name).toBe('x');
  });

  it('latency delays but answers', async () => {
    const crm = await start();
    crm.addFault({ route: 'create', latencyMs: 150 });
    const t0 = Date.now();
    expect((await create(crm, lead)).status).toBe(200);
    expect(Date.now() - t0).toBeGreaterThanOrEqual(140);
    expect(crm.requests()[0]!.durationMs).toBeGreaterThanOrEqual(140);
  });

  it('hang never answers; the client times out and close() still returns', async () => {
    const crm = await start();
    crm.addFault({ route: 'create', hang: true });
    await expect(call(`${crm.url}/crm/create`, { body: lead, headers: KEY, timeoutMs: 200 })).rejects.toThrow('client timeout');
    // A second hung request that is still open when the server closes.
    const pending = call(`${crm.url}/crm/create`, { body: lead, headers: KEY });
    await new Promise((r) => setTimeout(r, 50));
    await crm.close();
    await expect(pending).rejects.toThrow();
    expect(crm.requests().map((r) => r.status)).toEqual([0, 0]);
    expect(crm.leads()).toEqual([]);
  }, 10_000);

  it('reset drops the connection before processing', async () => {
    const crm = await start();
    crm.addFault({ route: 'create', reset: true, times: 1 });
    await expect(create(crm, lead)).rejects.toThrow();
    expect(crm.leads()).toEqual([]);
    expect((await create(crm, lead)).status).toBe(200);
  });

  it('resetAfterCommit stores the lead but loses the answer', async () => {
    const crm = await start();
    crm.addFault({ route: 'create', resetAfterCommit: true, times: 1 });
    await expect(fetch(`${crm.url}/crm/create`, { method: 'POST', body: JSON.stringify(lead), headers: KEY })).rejects.toThrow();
    expect(crm.leads()).toEqual([expect.objectContaining({ lead_id: 'L000001', phone: lead.phone })]);
    expect(crm.requests()[0]!.status).toBe(0);
  });

  it('failInBody answers 200 with a failure body and changes nothing', async () => {
    const crm = await start();
    await create(crm, lead);
    crm.addFault({ route: '*', failInBody: true });
    const c = await create(crm, lead);
    expect(c.status).toBe(200);
    expect(c.json).toEqual({ status: 'Creation Failed', reason: 'injected' });
    const u = await call(`${crm.url}/crm/update/L000001`, { body: { name: 'y' }, headers: KEY });
    expect(u.status).toBe(200);
    expect(u.json).toEqual({ status: 'Update Failed', reason: 'injected' });
    expect(crm.leads()).toEqual([expect.objectContaining({ name: 'x', version: 1 })]);
  });

  it('rate is deterministic for a seed', async () => {
    const pattern = async (seed: number) => {
      const crm = await start({ seed, auth: { style: 'none' } });
      crm.addFault({ route: 'create', status: 500, rate: 0.5 });
      const out: number[] = [];
      for (let i = 0; i < 30; i++) out.push((await create(crm, lead, {})).status);
      return out;
    };
    const a = await pattern(42);
    expect(await pattern(42)).toEqual(a);
    expect(a).toContain(500);
    expect(a).toContain(200);
    expect(await pattern(7)).not.toEqual(a);
  });

  it('rejects malformed faults', async () => {
    const crm = await start();
    expect(() => crm.addFault({ route: 'delete' as never, status: 500 })).toThrow(/route/);
    expect(() => crm.addFault({ route: 'create', rate: 2 })).toThrow(/rate/);
  });
});

describe('admin API and lifecycle', () => {
  it('manages leads, requests and faults over HTTP without logging itself', async () => {
    const crm = await start({ basePath: '/api' });
    const root = `http://127.0.0.1:${crm.port}`;
    const added = await call(`${root}/_admin/faults`, { body: [{ route: 'create', status: 503, times: 1 }, { route: 'fetch', latencyMs: 1 }] });
    expect(added.json).toEqual({ added: 2 });
    expect((await call(`${root}/_admin/faults`)).json).toHaveLength(2);
    expect((await call(`${root}/_admin/faults`, { body: { route: 'nope' } })).status).toBe(400);
    expect((await call(`${root}/_admin/faults`, { body: '{' })).status).toBe(400);

    expect((await create(crm, { phone: '+919876543210', name: 'x' })).status).toBe(503);
    expect((await create(crm, { phone: '+919876543210', name: 'x' })).status).toBe(200);
    expect((await call(`${root}/_admin/faults`, { method: 'DELETE' })).status).toBe(200);
    expect(crm.requests()).toHaveLength(2);

    const leads = await call(`${root}/_admin/leads`);
    expect(leads.json).toEqual([expect.objectContaining({ lead_id: 'L000001' })]);
    const reqs = await call(`${crm.url}/_admin/requests`);
    expect(reqs.json.map((r: { status: number }) => r.status)).toEqual([503, 200]);
    expect((await call(`${root}/_admin/leads`, { method: 'DELETE' })).status).toBe(405);
    expect((await call(`${root}/_admin/nothing`)).status).toBe(404);

    expect((await call(`${root}/_admin/reset`, { method: 'POST' })).json).toEqual({ reset: true });
    expect(crm.leads()).toEqual([]);
    expect(crm.requests()).toEqual([]);
    expect((await call(`${root}/_admin/faults`)).json).toEqual([]);
  });

  it('reset() forgets everything and starts ids over; close() is idempotent', async () => {
    const crm = await start();
    crm.addFault({ route: 'update', status: 500 });
    await create(crm, { phone: '+919876543210', name: 'x' });
    crm.reset();
    expect(crm.leads()).toEqual([]);
    expect(crm.requests()).toEqual([]);
    expect((await create(crm, { phone: '+919876543210', name: 'x' })).json.lead_id).toBe('L000001');
    expect((await call(`${crm.url}/crm/update/L000001`, { body: { name: 'y' }, headers: KEY })).status).toBe(200);
    await crm.close();
    await crm.close();
  });

  it('returns copies', async () => {
    const crm = await start();
    await create(crm, { phone: '+919876543210', name: 'x', custom_fields: { a: 1 } });
    crm.leads()[0]!.custom_fields.a = 2;
    crm.requests()[0]!.status = 999;
    expect(crm.leads()[0]!.custom_fields.a).toBe(1);
    expect(crm.requests()[0]!.status).toBe(200);
  });
});
