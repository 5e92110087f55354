/** The daemon's HTTP API, in-process, against the reference CRM over real HTTP and a real SQLite file. */
import { DEFAULT_RETRY_POLICY, Metrics, Runner, SqliteStore, createApiServer, prepareTenants, startDaemon, type Daemon } from '@crm-sync/runner';
import { GotHttpClient, SyncEngine, toContact } from '@crm-sync/core';
import { readFileSync } from 'node:fs';
import { createServer, type AddressInfo } from 'node:net';
import { join } from 'node:path';
import { gzipSync } from 'node:zlib';
import { parse } from 'yaml';
import { createLogger } from '@crm-sync/runner';
import { CRM_KEY, REPO, TENANT, event, get, post, silentLogger, useDaemonEnv } from './daemon.support';

const fixture = useDaemonEnv();

async function start(extra?: Record<string, unknown>, tenant?: Record<string, unknown>): Promise<Daemon> {
  return fixture.start(fixture.env.config(extra, tenant));
}

const idle = async (d: Daemon) => { await d.runner.whenIdle(); };

describe('POST /v1/events', () => {
  test('answers 202 once the event is durable: a daemon started on the same data dir has it', async () => {
    const d = await start({}, { quiet: '1h', maxWait: '2h' });
    const res = await post(`${d.url}/v1/events`, event(1));
    expect(res).toEqual({ status: 202, body: { accepted: 1, ignored: 0, rejected: [] } });
    await d.stop();

    const again = await start({}, { quiet: '1h', maxWait: '2h' });
    const contact = await get(`${again.url}/v1/tenants/${TENANT}/contacts/c1`);
    expect(contact.status).toBe(200);
    expect(contact.body).toMatchObject({ tenant: TENANT, contactId: 'c1', state: 'pending' });
    expect(fixture.env.crm.requests()).toHaveLength(0);
  });

  test('a mixed batch: good events accepted, each bad one rejected by index and eventId with the field and reason', async () => {
    const d = await start();
    const res = await post(`${d.url}/v1/events`, [
      event(1),
      event(2, { eventId: 'bad-phone', phone: 'call me' }),
      event(3),
      event(4, { eventId: 'bad-mail', email: 'not-an-email', attributes: null }),
    ]);
    expect(res.status).toBe(202);
    expect(res.body.accepted).toBe(2);
    expect(res.body.rejected).toEqual([
      { index: 1, eventId: 'bad-phone', errors: [{ field: 'phone', message: expect.stringContaining('not a phone number') }] },
      { index: 3, eventId: 'bad-mail', errors: expect.arrayContaining([
        { field: 'email', message: expect.stringContaining('not a valid email') },
        { field: 'attributes', message: expect.stringContaining('must be an object') },
      ]) },
    ]);
    await idle(d);
    expect(fixture.env.crm.leads().map((l) => l.phone).sort()).toEqual([event(1).phone, event(3).phone]);
  });

  test('a request that is all bad gets 400 with the same details, and changes nothing', async () => {
    const d = await start();
    const res = await post(`${d.url}/v1/events`, [{ eventId: 'x1', contactId: 'c1' }, { eventId: 'x2', phone: '+919876543210' }]);
    expect(res.status).toBe(400);
    expect(res.body).toEqual({
      accepted: 0, ignored: 0,
      rejected: [
        { index: 0, eventId: 'x1', errors: [{ field: 'phone', message: 'is required' }] },
        { index: 1, eventId: 'x2', errors: [{ field: 'contactId', message: 'is required' }] },
      ],
    });
    expect((await get(`${d.url}/v1/status`)).body).toMatchObject({ pending: 0, inFlight: 0, leads: 0 });
  });

  test('NDJSON: one event per line; a malformed line refuses the request, naming the line', async () => {
    const d = await start();
    const ndjson = { 'content-type': 'application/x-ndjson' };
    const ok = await post(`${d.url}/v1/events`, `${JSON.stringify(event(1))}\n\n${JSON.stringify(event(2))}\n`, ndjson);
    expect(ok).toEqual({ status: 202, body: { accepted: 2, ignored: 0, rejected: [] } });
    const bad = await post(`${d.url}/v1/events`, `${JSON.stringify(event(3))}\n{"contactId": "c4",\n`, ndjson);
    expect(bad.status).toBe(400);
    expect(bad.body.error).toMatchObject({ code: 'ERR_BAD_JSON', message: expect.stringMatching(/^line 2: /) });
    await idle(d);
    expect(fixture.env.crm.leads()).toHaveLength(2);
  });

  test('a body over the limit gets 413; malformed JSON 400; no stack traces', async () => {
    const d = await start({ maxBodyBytes: 2048 });
    const big = await post(`${d.url}/v1/events`, Array.from({ length: 40 }, (_, i) => event(i)));
    expect(big.status).toBe(413);
    expect(big.body.error.code).toBe('ERR_BODY_TOO_LARGE');
    const broken = await post(`${d.url}/v1/events`, '{"contactId": ');
    expect(broken.status).toBe(400);
    expect(JSON.stringify(broken.body)).not.toMatch(/\bat .*\.(ts|js):\d+/);
  });

  test('a compressed body gets 415 naming its Content-Encoding (not "not valid UTF-8"), and nothing is accepted', async () => {
    const d = await start({}, { quiet: '1h', maxWait: '2h' });
    const zipped = await fetch(`${d.url}/v1/events`, { method: 'POST', headers: { 'content-type': 'application/json', 'content-encoding': 'gzip' }, body: gzipSync(JSON.stringify(event(1))) });
    expect(zipped.status).toBe(415);
    expect(((await zipped.json()) as { error: unknown }).error).toMatchObject({ code: 'ERR_UNSUPPORTED_ENCODING', message: expect.stringContaining('"gzip"') });
    expect((await post(`${d.url}/v1/events`, event(1), { 'content-encoding': 'br' })).status).toBe(415);
    expect((await post(`${d.url}/v1/dead-letters/replay`, { all: true }, { 'content-encoding': 'gzip' })).status).toBe(415);
    expect((await post(`${d.url}/v1/events`, event(1), { 'content-encoding': 'identity' })).status).toBe(202);
    expect(await d.runner.status()).toMatchObject({ pending: 1 });
  });

  test('with an ingest token: 401 without it or with a wrong one, 202 with it; probes stay open', async () => {
    process.env.DAEMON_TEST_TOKEN = 's3cret-token';
    const d = await start({ ingestToken: 'env:DAEMON_TEST_TOKEN' });
    expect((await post(`${d.url}/v1/events`, event(1))).status).toBe(401);
    const wrong = await post(`${d.url}/v1/events`, event(1), { authorization: 'Bearer s3cret-tokex' });
    expect(wrong.status).toBe(401);
    expect(JSON.stringify(wrong.body)).not.toContain('s3cret');
    expect((await get(`${d.url}/v1/status`)).status).toBe(401);
    // RFC 9110: a 401 says which scheme it wants.
    expect((await fetch(`${d.url}/v1/status`)).headers.get('www-authenticate')).toBe('Bearer realm="crm-sync"');
    expect((await post(`${d.url}/v1/events`, event(1), { authorization: 'Bearer s3cret-token' })).status).toBe(202);
    expect((await get(`${d.url}/healthz`)).status).toBe(200);
    expect((await get(`${d.url}/readyz`)).status).toBe(200);
  });

  test('token rotation without downtime: a reload accepts the new token beside the previous one, then the new one only', async () => {
    process.env.DAEMON_OLD_TOKEN = 'old-token-1';
    process.env.DAEMON_NEW_TOKEN = 'new-token-2';
    const lines: string[] = [];
    const d = await fixture.start(fixture.env.config({ ingestToken: 'env:DAEMON_OLD_TOKEN' }),
      createLogger({ level: 'trace', destination: { write: (line: string) => { lines.push(line); } } }));
    const status = async (token: string) => (await get(`${d.url}/v1/status`, { authorization: `Bearer ${token}` })).status;
    expect([await status('old-token-1'), await status('new-token-2')]).toEqual([200, 401]);

    expect(await d.reload(fixture.env.config({ ingestToken: 'env:DAEMON_NEW_TOKEN', previousIngestToken: 'env:DAEMON_OLD_TOKEN' })))
      .toMatchObject({ applied: ['ingestToken'], needRestart: [] });
    expect([await status('old-token-1'), await status('new-token-2')]).toEqual([200, 200]);

    expect(await d.reload(fixture.env.config({ ingestToken: 'env:DAEMON_NEW_TOKEN' }))).toMatchObject({ applied: ['ingestToken'] });
    expect([await status('old-token-1'), await status('new-token-2'), await status('')]).toEqual([401, 200, 401]);
    expect(() => fixture.env.config({ previousIngestToken: 'env:DAEMON_OLD_TOKEN' })).toThrow('previousIngestToken: needs ingestToken');
    // The reloads are logged by the settings' names, never their values.
    expect(lines.filter((l) => l.includes('"msg":"reloaded"'))).toHaveLength(2);
    expect(lines.join('')).not.toMatch(/old-token-1|new-token-2/);
  });

  test('a reload applies a new allow-list before its tenants: a tenant on a newly allowed host syncs at once', async () => {
    const d = await start();
    const viaLocalhost = fixture.env.crm.url.replace('127.0.0.1', 'localhost');
    const added = (extra: Record<string, unknown> = {}) => {
      const base = fixture.env.config(extra);
      const other = fixture.env.config(extra, { baseUrl: viaLocalhost });
      return { ...base, tenants: [...base.tenants, { ...other.tenants[0]!, name: 'globex' }] };
    };
    // Plain http to a host not on the allow-list: refused, nothing changes.
    await expect(d.reload(added())).rejects.toMatchObject({ code: 'ERR_URL_FORBIDDEN' });
    expect(d.runner.tenantList()).toEqual([TENANT]);

    expect(await d.reload(added({ allowHosts: ['127.0.0.1', 'localhost'] }))).toMatchObject({ added: ['globex'], applied: ['allowHosts'] });
    expect((await post(`${d.url}/v1/tenants/globex/events`, event(7))).status).toBe(202);
    await idle(d);
    expect(await d.runner.contact('globex', 'c7')).toMatchObject({ state: 'synced', lastOutcome: 'created' });
  });

  test('a redelivered eventId is accepted and changes nothing: one lead, one create', async () => {
    const d = await start();
    const e = event(1, { eventId: 'same' });
    expect((await post(`${d.url}/v1/events`, e)).body).toEqual({ accepted: 1, ignored: 0, rejected: [] });
    await idle(d);
    expect((await post(`${d.url}/v1/events`, { ...e, name: 'Changed' })).body).toEqual({ accepted: 1, ignored: 1, rejected: [] });
    await idle(d);
    expect(fixture.env.crm.leads()).toEqual([expect.objectContaining({ phone: e.phone, name: 'Contact 1' })]);
    expect(fixture.env.crm.requests().map((r) => r.route)).toEqual(['fetch', 'create']);
  });

  test('POST /v1/tenants/{tenant}/events: events default to that tenant, another tenant is refused, unknown tenant 404', async () => {
    const d = await start();
    const res = await post(`${d.url}/v1/tenants/${TENANT}/events`, [event(1), event(2, { tenant: 'globex' })]);
    expect(res.status).toBe(202);
    expect(res.body.rejected).toEqual([{ index: 1, eventId: expect.any(String), errors: [{ field: 'tenant', message: expect.any(String) }] }]);
    const unknown = await post(`${d.url}/v1/tenants/globex/events`, event(3));
    expect(unknown.status).toBe(404);
    expect(unknown.body.error.code).toBe('ERR_UNKNOWN_TENANT');
  });

  test('a store that fails answers 503, never 202', async () => {
    const config = fixture.env.config();
    const tenants = prepareTenants(config);
    const store = new SqliteStore(join(fixture.env.dataDir, 'broken.db'));
    const runner = new Runner({ store, tenants, engine: new SyncEngine({ http: new GotHttpClient() }), retry: DEFAULT_RETRY_POLICY });
    const server = createApiServer({
      backend: runner, tenants: [TENANT], maxBodyBytes: 1 << 20, metrics: new Metrics(() => runner.status()), logger: silentLogger(), isReady: () => true,
    });
    await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
    await store.close();
    try {
      const res = await post(`http://127.0.0.1:${(server.address() as AddressInfo).port}/v1/events`, event(1));
      expect(res.status).toBe(503);
      expect(res.body.error.code).toBe('ERR_STORE_UNAVAILABLE');
    } finally {
      await new Promise((r) => server.close(r));
    }
  });
});

describe('status, contacts, dead letters, metrics', () => {
  test('GET /v1/status and /v1/tenants/{t}/contacts/{id}: lead id, state and history; unknown contact 404', async () => {
    const d = await start();
    await post(`${d.url}/v1/events`, [event(1), event(1, { name: 'Priya Sharma' })]);
    const pending = await get(`${d.url}/v1/status`);
    expect(pending.body).toMatchObject({ pending: 1, deadLetters: 0 });
    await idle(d);
    expect((await get(`${d.url}/v1/status`)).body).toEqual({ pending: 0, inFlight: 0, retrying: 0, deadLetters: 0, leads: 1 });
    const contact = await get(`${d.url}/v1/tenants/${TENANT}/contacts/c1`);
    const [lead] = fixture.env.crm.leads();
    expect(lead.name).toBe('Priya Sharma');
    expect(contact.body).toMatchObject({ tenant: TENANT, contactId: 'c1', leadId: lead.lead_id, state: 'synced', lastOutcome: 'created' });
    expect(contact.body.history[0].calls.map((c: { step: string }) => c.step)).toEqual(['fetch', 'create']);
    expect((await get(`${d.url}/v1/tenants/${TENANT}/contacts/nobody`)).status).toBe(404);
  });

  test('a permanent failure is a dead letter; replay syncs it once the CRM is fixed', async () => {
    const d = await start();
    fixture.env.crm.addFault({ route: 'create', status: 422 });
    await post(`${d.url}/v1/events`, event(1));
    await idle(d);
    const dead = await get(`${d.url}/v1/dead-letters?tenant=${TENANT}`);
    expect(dead.body.deadLetters).toEqual([expect.objectContaining({ tenant: TENANT, contactId: 'c1', error: expect.objectContaining({ status: 422, step: 'create' }) })]);
    expect((await post(`${d.url}/v1/dead-letters/replay`, {})).status).toBe(400);
    expect((await post(`${d.url}/v1/dead-letters/replay`, { all: 'yes' })).body.error.errors).toEqual([{ field: 'all', message: 'must be a boolean, got "yes"' }]);
    fixture.env.crm.clearFaults();
    expect((await post(`${d.url}/v1/dead-letters/replay`, { tenant: TENANT, contactId: 'c1' })).body).toEqual({ replayed: 1 });
    await idle(d);
    expect(fixture.env.crm.leads()).toHaveLength(1);
    expect((await get(`${d.url}/v1/dead-letters`)).body.deadLetters).toEqual([]);
  });

  test('POST /v1/tenants/{t}/resync: the named contacts are sent again though unchanged; bad requests name the field', async () => {
    const d = await start();
    await post(`${d.url}/v1/events`, [event(1), event(2)]);
    await idle(d);
    const before = fixture.env.crm.requests().length;
    const resync = (body: unknown, tenant = TENANT) => post(`${d.url}/v1/tenants/${tenant}/resync`, body);

    expect((await resync({ contactIds: ['c1', 'nobody'], perSecond: 50 })).body).toEqual({ resynced: 1 });
    await idle(d);
    expect(fixture.env.crm.requests().slice(before).map((r) => r.route)).toEqual(['update']);
    expect((await resync({ all: true })).body).toEqual({ resynced: 2 });
    await idle(d);
    expect(fixture.env.crm.requests().slice(before).map((r) => r.route)).toEqual(['update', 'update', 'update']);

    const refused = async (body: unknown) => {
      const r = await resync(body);
      expect(r.status).toBe(400);
      return r.body.error.errors.map((e: { field: string }) => e.field);
    };
    expect(await refused({})).toEqual(['contactIds']);
    expect(await refused({ contactIds: [] })).toEqual(['contactIds']);
    expect(await refused({ contactIds: ['c1', 7] })).toEqual(['contactIds[1]']);
    expect(await refused({ all: true, contactIds: ['c1'] })).toEqual(['all']);
    expect(await refused({ all: true, perSecond: 0 })).toEqual(['perSecond']);
    expect((await resync({ all: true }, 'nobody')).status).toBe(404);
  });

  test('GET /metrics: events by tenant, syncs by outcome, CRM latency by step, contacts by state', async () => {
    const d = await start();
    await post(`${d.url}/v1/events`, [event(1), event(2, { phone: 'x' })]);
    await idle(d);
    const res = await fetch(`${d.url}/metrics`);
    expect(res.headers.get('content-type')).toContain('text/plain');
    const text = await res.text();
    expect(text).toContain(`crm_sync_events_accepted_total{tenant="${TENANT}"} 1`);
    expect(text).toContain(`crm_sync_events_rejected_total{tenant="${TENANT}"} 1`);
    expect(text).toContain(`crm_sync_syncs_total{tenant="${TENANT}",outcome="created"} 1`);
    expect(text).toMatch(new RegExp(`crm_sync_crm_call_duration_seconds_count\\{tenant="${TENANT}",step="create"\\} 1`));
    expect(text).toContain('crm_sync_contacts{state="pending"} 0');
    expect(text).not.toContain('daemon-test-key');
  });

  test('GET /metrics counts the syncs deferred because another sync held the same phone', async () => {
    const d = await start({}, { concurrency: 2 });
    // The first create is slow, so the person's other contact (same phone) finds the phone held, and is deferred.
    fixture.env.crm.addFault({ route: 'create', latencyMs: 600, times: 1 });
    await post(`${d.url}/v1/events`, [event(1), event(2, { phone: event(1).phone })]);
    await idle(d);
    expect(fixture.env.crm.leads()).toHaveLength(1);
    expect(await (await fetch(`${d.url}/metrics`)).text()).toMatch(new RegExp(`crm_sync_sync_deferrals_total\\{tenant="${TENANT}"\\} [1-9]`));
  });

  test('unknown routes 404, wrong methods 405', async () => {
    const d = await start();
    expect((await get(`${d.url}/v2/nothing`)).status).toBe(404);
    const wrong = await fetch(`${d.url}/v1/events`);
    expect(wrong.status).toBe(405);
    expect(wrong.headers.get('allow')).toBe('POST');
    expect(((await wrong.json()) as { error: { code: string } }).error.code).toBe('ERR_METHOD_NOT_ALLOWED');
  });
});

describe('documentation and logs', () => {
  test('every route in docs/openapi.yaml is served (and nothing answers "no route")', async () => {
    const d = await start();
    const doc = parse(readFileSync(join(REPO, 'docs/openapi.yaml'), 'utf8')) as { paths: Record<string, Record<string, unknown>> };
    const concrete = (path: string) => path.replace('{tenant}', TENANT).replace('{contactId}', 'c1');
    for (const [path, ops] of Object.entries(doc.paths)) {
      for (const method of Object.keys(ops)) {
        const res = await fetch(d.url + concrete(path), { method: method.toUpperCase(), headers: { 'content-type': 'application/json' }, body: method === 'post' ? '{}' : undefined });
        const body = await res.text();
        expect([path, method, res.status === 405 || body.includes('ERR_NOT_FOUND')]).toEqual([path, method, false]);
      }
    }
  });

  test('JSON logs carry no ingest token, no CRM key, no Authorization header', async () => {
    process.env.DAEMON_TEST_TOKEN = 'tok-Zq7+secret';
    const lines: string[] = [];
    const logger = createLogger({ level: 'trace', destination: { write: (line: string) => { lines.push(line); } } });
    const daemon = await fixture.start(fixture.env.config({ ingestToken: 'env:DAEMON_TEST_TOKEN' }), logger);
    const auth = { authorization: 'Bearer tok-Zq7+secret' };
    await post(`${daemon.url}/v1/events`, [event(1), event(2, { phone: 'nope' })], auth);
    await post(`${daemon.url}/v1/events`, event(3), { authorization: 'Bearer wrong' });
    fixture.env.crm.addFault({ route: 'update', status: 401 });
    await daemon.runner.whenIdle();
    await post(`${daemon.url}/v1/events`, event(1, { name: 'Changed' }), auth);
    await daemon.runner.whenIdle();
    logger.child({ tenant: TENANT }).info({ headers: { authorization: 'Bearer tok-Zq7+secret' }, token: 'tok-Zq7+secret' }, 'redaction check');
    await daemon.stop();

    const text = lines.join('');
    expect(lines.map((l) => JSON.parse(l).msg)).toEqual(expect.arrayContaining(['crm-sync daemon listening', 'sync dead-lettered', 'redaction check', 'stopped']));
    expect(text).toContain('"authorization":"***"');
    for (const secret of ['tok-Zq7+secret', 'tok-Zq7%2Bsecret', CRM_KEY]) expect(text).not.toContain(secret);
  });

  test('a daemon that cannot listen stops before its runner claims anything (ERR_LISTEN, the contact left pending)', async () => {
    const taken = createServer();
    await new Promise<void>((resolve) => taken.listen(0, '127.0.0.1', resolve));
    const port = (taken.address() as AddressInfo).port;
    const due = new SqliteStore(join(fixture.env.dataDir, 'crm-sync.db'));
    await due.accept([{ contact: toContact(event(1), { defaultTenant: TENANT }), window: { quietMs: 0, maxWaitMs: 0 } }], Date.now() - 1000);
    await due.close();
    const lines: string[] = [];
    try {
      await expect(startDaemon(fixture.env.config({ listen: `127.0.0.1:${port}` }), { logger: createLogger({ level: 'info', destination: { write: (line: string) => { lines.push(line); } } }) }))
        .rejects.toMatchObject({ code: 'ERR_LISTEN', message: expect.stringContaining('EADDRINUSE') });
    } finally {
      taken.close();
    }
    expect(lines.map((l) => JSON.parse(l).msg)).not.toContain('runner started');
    expect(fixture.env.crm.requests()).toEqual([]);
    const after = new SqliteStore(join(fixture.env.dataDir, 'crm-sync.db'));
    expect(await after.counts(Date.now())).toMatchObject({ pending: 1, inFlight: 0 });
    await after.close();
  });

  test('stopping with a create still on the wire after the drain: its late answer\'s lead id is stored before the store closes', async () => {
    const lines: string[] = [];
    const daemon = await startDaemon(fixture.env.config({ drain: '100ms' }), { logger: createLogger({ level: 'info', destination: { write: (line: string) => { lines.push(line); } } }) });
    fixture.env.crm.addFault({ route: 'create', latencyMs: 1500, times: 1 });
    await post(`${daemon.url}/v1/events`, event(1));
    const until = Date.now() + 5000;
    while (!fixture.env.crm.requests().some((r) => r.route === 'create') && Date.now() < until) await new Promise((r) => setTimeout(r, 20));
    await daemon.stop();
    // The drain (100 ms) ended first; the answer came 1.4 s later, and the store was still open for it.
    const [lead] = fixture.env.crm.leads();
    expect(lead).toBeDefined();
    const store = new SqliteStore(join(fixture.env.dataDir, 'crm-sync.db'));
    try {
      expect(await store.contactStatus(TENANT, 'c1', Date.now())).toMatchObject({ leadId: lead!.lead_id });
    } finally {
      await store.close();
    }
    expect(lines.map((l) => JSON.parse(l).msg).filter((m: string) => /error/.test(m))).toEqual([]);
  });
});
