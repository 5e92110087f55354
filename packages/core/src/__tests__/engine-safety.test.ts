import {
  CannedHttpClient, checkExamples, compileMapping, dryRun, PermanentError, registerAdapter, SyncEngine, toContact, type AuthAdapter, type FlowAdapter, type SyncError,
} from '../index';
import { container as rootContainer } from 'tsyringe'; // after ../index, which loads reflect-metadata for it
import { registerBuiltinAdapters } from '@crm-sync/runner';
import { readSeedMapping } from './seed';

beforeAll(() => registerBuiltinAdapters());

const SECRET = 'Sup3r/Secret+key';
const contact = toContact({ contactId: 'c1', phone: '+91 98765 43210', name: 'Priya Sharma', email: 'priya@example.com', attributes: { customer_id: 'K-9' } }, { defaultTenant: 'acme' });
const notFound = { status: 404, body: { status: 'Not Found' } };

/** The seed contract with `edit` applied to its text, and these adapters registered in a container of its own. */
function seedWith(edit: (text: string) => string, ...adapters: Array<AuthAdapter | FlowAdapter>) {
  const container = rootContainer.createChildContainer();
  for (const a of adapters) registerAdapter(a, container);
  return compileMapping(edit(readSeedMapping()), { file: 'acme.yaml', container });
}

async function run(mapping: ReturnType<typeof seedWith>, responses: ConstructorParameters<typeof CannedHttpClient>[0] = {}) {
  const http = new CannedHttpClient(responses);
  const result = await new SyncEngine({ http, secrets: () => SECRET }).sync(mapping, contact).then((r) => r, (e: unknown) => e as SyncError);
  return { result, http };
}

describe('a fetch must search for the contact', () => {
  const fetchLine = /^  fetch: .*$/m;

  it('one whose criterion renders nothing (a misspelled field) is refused before it is sent: it could match anyone', async () => {
    const mapping = seedWith((t) => t.replace(fetchLine, '  fetch: { method: GET, url: /crm/fetch, query: { phone: "{{payload.phoen}}" } }'));
    const { result, http } = await run(mapping, { fetch: [{ status: 200, body: { lead_id: 'someone-else' } }] });
    expect(http.requests).toEqual([]);
    expect(result).toBeInstanceOf(PermanentError);
    expect(result).toMatchObject({
      code: 'ERR_FETCH_NO_CRITERION', context: { step: 'fetch', contactId: 'c1' },
      message: "the fetch request is the same whoever it searches for (GET https://crm.example.com/crm/fetch), so it could match anyone's lead: check what endpoints.fetch's url, query and body search by (a misspelled field gives nothing, and is left out), or this contact has none of the values it searches by (a match chain, match: [email, phone], skips the keys a contact lacks)",
    });
  });

  it('a fetch by email alone, for a contact without one, is no search either; with a match chain the key is skipped and the contact created', async () => {
    const byEmail = (t: string) => t.replace(fetchLine, '  fetch: { method: GET, url: /crm/fetch, query: { email: "{{contact.email}}" } }');
    const noEmail = toContact({ contactId: 'c2', phone: '+919876543211', name: 'Ravi' }, { defaultTenant: 'acme' });
    const http = new CannedHttpClient({ fetch: [{ status: 200, body: { lead_id: 'someone-else' } }] });
    const err = await new SyncEngine({ http, secrets: () => SECRET }).sync(seedWith(byEmail), noEmail).then(() => undefined, (e: unknown) => e as SyncError);
    expect(err).toMatchObject({ code: 'ERR_FETCH_NO_CRITERION' });
    expect(http.requests).toEqual([]);
    const chained = (t: string) => byEmail(t).replace('query: { email: "{{contact.email}}" }', 'query: { email: "{{match.value}}" }').replace(/^flow: .*$/m, '$&\nmatch: [email]');
    const http2 = new CannedHttpClient();
    expect(await new SyncEngine({ http: http2, secrets: () => SECRET }).sync(seedWith(chained), noEmail)).toMatchObject({ action: 'created' });
    expect(http2.requests.map((r) => r.step)).toEqual(['create']);
  });

  it('the same for a search body that names a field the payload does not have', async () => {
    const mapping = seedWith((t) => t.replace(fetchLine, `  fetch: { method: POST, url: /crm/search, body: '{"filter": {"PHONE": payload.serch}}' }`));
    const { result, http } = await run(mapping);
    expect(http.requests).toEqual([]);
    expect(result).toMatchObject({ code: 'ERR_FETCH_NO_CRITERION' });
  });

  it('a clock or $random in the search body does not hide a missing criterion; with the criterion, it is sent', async () => {
    const timed = (filter: string) => (t: string) => t.replace(fetchLine, `  fetch: { method: POST, url: /crm/search, body: '{"filter": {"PHONE": ${filter}}, "requested_at": $millis(), "day": $now("[Y]-[M01]-[D01]"), "nonce": $random()}' }`);
    const missing = await run(seedWith(timed('payload.serch')), { fetch: [{ status: 200, body: { lead_id: 'someone-else' } }] });
    expect(missing.result).toMatchObject({ code: 'ERR_FETCH_NO_CRITERION' });
    expect(missing.http.requests).toEqual([]);
    const present = await run(seedWith(timed('payload.phone')), { fetch: [notFound] });
    expect(present.result).toMatchObject({ action: 'created' });
    expect(JSON.parse(present.http.requests[0]!.body!)).toMatchObject({ filter: { PHONE: '+919876543210' }, requested_at: expect.any(Number) });
    expect(JSON.parse(present.http.requests[0]!.body!).requested_at).not.toBe(946_684_800_000); // the request sent has the real clock
  });

  it.each([
    ['the phone', '{ phone: "{{contact.phone}}" }'],
    ['the email only', '{ email: "{{contact.email}}" }'],
    ['an attribute (the customer\'s own id)', '{ ref: "{{contact.attributes.customer_id}}" }'],
    ['a payload field', '{ mobile: "{{payload.phone}}" }'],
    ['the contact id', '{ external_id: "{{contact.contactId}}" }'],
  ])('one that searches by %s is sent', async (_what, query) => {
    const mapping = seedWith((t) => t.replace(fetchLine, `  fetch: { method: GET, url: /crm/fetch, query: ${query} }`));
    const { result, http } = await run(mapping, { fetch: [notFound] });
    expect(result).toMatchObject({ action: 'created' });
    expect(http.requests.map((r) => r.step)).toEqual(['fetch', 'create']);
  });

  it('a match chain: each key\'s fetch searches by match.value', async () => {
    const chain = (t: string) => t.replace(fetchLine, '  fetch: { method: GET, url: "/crm/fetch?{{match.key}}={{match.value}}" }').replace(/^flow: .*$/m, '$&\nmatch: [email, phone]');
    const { result, http } = await run(seedWith(chain), { fetch: [notFound, notFound] });
    expect(result).toMatchObject({ action: 'created' });
    expect(http.requests.map((r) => r.url)).toEqual([
      'https://crm.example.com/crm/fetch?email=priya%40example.com', 'https://crm.example.com/crm/fetch?phone=%2B919876543210', 'https://crm.example.com/crm/create',
    ]);
    // The key alone (the value misspelled) is no search.
    const keyOnly = (t: string) => chain(t).replace('={{match.value}}', '={{match.valeu}}');
    expect(() => seedWith(keyOnly)).toThrow(/match\.valeu/); // a template's missing name is caught at load already
  });
});

describe('a flow adapter is held to its contract', () => {
  const flowNamed = (name: string, run: FlowAdapter['run']): FlowAdapter => ({ kind: 'flow', name, requires: ['fetch', 'create', 'update'], run });
  const useFlow = (flow: FlowAdapter) => seedWith((t) => t.replace(/^flow: .*$/m, `flow: ${flow.name}`), flow);

  it('a plain error before any write: a permanent ERR_FLOW_ADAPTER naming the flow, its message masked', async () => {
    const flow = flowNamed('throws-first', async () => { throw new TypeError(`cannot read ${SECRET}`); });
    const { result, http } = await run(useFlow(flow));
    expect(http.requests).toEqual([]);
    expect(result).toBeInstanceOf(PermanentError);
    expect(result).toMatchObject({ code: 'ERR_FLOW_ADAPTER', retryable: false, message: 'the throws-first flow adapter failed: cannot read ***', context: { tenant: 'acme', contactId: 'c1' } });
  });

  it('a plain error after a create it made: the create\'s outcome is kept (a retry would create again), the failure a warning', async () => {
    const flow = flowNamed('creates-then-throws', async (ops) => {
      await ops.create();
      throw new TypeError(`cannot read ${SECRET}`);
    });
    const { result, http } = await run(useFlow(flow));
    expect(http.requests.map((r) => r.step)).toEqual(['create']);
    expect(result).toMatchObject({
      action: 'created', leadId: expect.any(String),
      warnings: ['the creates-then-throws flow adapter failed after its write (cannot read ***); the write\'s outcome is kept'],
    });
  });

  it('a copy of a write\'s outcome is that outcome; another value after a write keeps the write\'s, with a warning; none without a write is refused', async () => {
    const copying = flowNamed('copies', async (ops) => ({ ...(await ops.create()) }));
    const r0 = await run(useFlow(copying));
    expect(r0.result).toMatchObject({ action: 'created', leadId: expect.any(String), warnings: [] });

    const nothing = flowNamed('claims-a-write', async () => ({ action: 'updated', leadId: 'NEVER-WRITTEN' }));
    const r1 = await run(useFlow(nothing));
    expect(r1.http.requests).toEqual([]);
    expect(r1.result).toMatchObject({ code: 'ERR_FLOW_ADAPTER', message: 'the claims-a-write flow adapter returned {"action":"updated","leadId":"NEVER-WRITTEN"} without writing: a flow returns what ops.create(), ops.update() or ops.upsert() returned' });

    const rewritten = flowNamed('rewrites-the-outcome', async (ops) => ({ ...(await ops.create()), leadId: 42 as unknown as string }));
    const r2 = await run(useFlow(rewritten));
    expect(r2.http.requests.map((r) => r.step)).toEqual(['create']);
    expect(r2.result).toMatchObject({ action: 'created', leadId: expect.any(String), warnings: [expect.stringContaining('returned {"action":"created","leadId":42}, not the outcome of its write; the write\'s outcome is kept')] });
    expect((r2.result as { leadId: unknown }).leadId).not.toBe(42);

    const undef = flowNamed('returns-nothing', async (ops) => { await ops.create(); return undefined as never; });
    expect((await run(useFlow(undef))).result).toMatchObject({ action: 'created', warnings: [expect.stringContaining('returned nothing, not the outcome of its write')] });
  });

  it('an update of a lead id that is not a non-empty string is refused before it is sent', async () => {
    const flow = flowNamed('updates-a-number', async (ops) => ops.update(7 as unknown as string));
    const { result, http } = await run(useFlow(flow));
    expect(http.requests).toEqual([]);
    expect(result).toMatchObject({ code: 'ERR_FLOW_ADAPTER', message: 'the updates-a-number flow adapter asked to update lead 7: a lead id is a non-empty string', context: { step: 'update' } });
  });

  it('the built-in flows pass, and an engine error through a flow keeps its class', async () => {
    expect((await run(seedWith((t) => t), { fetch: [notFound] })).result).toMatchObject({ action: 'created', leadId: expect.any(String) });
    const unavailable = await run(seedWith((t) => t), { fetch: [{ status: 503, body: { status: 'Unavailable' } }] });
    expect(unavailable.result).toMatchObject({ code: 'ERR_CRM_UNAVAILABLE', retryable: true });
  });
});

describe('headers', () => {
  it('a mapping header that renders a line break from the data is a permanent mapping error naming the header', async () => {
    const mapping = seedWith((t) => t.replace('  create: { method: POST, url: /crm/create }', '  create: { method: POST, url: /crm/create, headers: { X-Name: "{{contact.name}}" } }'));
    const http = new CannedHttpClient({ fetch: [notFound] });
    const broken = toContact({ contactId: 'c1', phone: '+919876543210', name: 'Priya\r\nX-Admin: 1' }, { defaultTenant: 'acme' });
    const err = await new SyncEngine({ http, secrets: () => SECRET }).sync(mapping, broken).then(() => undefined, (e: unknown) => e as SyncError);
    expect(http.requests.map((r) => r.step)).toEqual(['fetch']);
    expect(err).toMatchObject({ code: 'ERR_MAPPING_TEMPLATE', retryable: false, message: expect.stringContaining('endpoints.create.headers.X-Name: rendered a value with a character no header may hold (a line break, a control character, or one beyond Latin-1') });
    // Cyrillic cannot go in a header either (node would refuse it on every attempt); Latin-1 can.
    const ivan = toContact({ contactId: 'c1', phone: '+919876543210', name: 'Иван' }, { defaultTenant: 'acme' });
    const http2 = new CannedHttpClient({ fetch: [notFound] });
    expect(await new SyncEngine({ http: http2, secrets: () => SECRET }).sync(mapping, ivan).then(() => undefined, (e: unknown) => e)).toMatchObject({ code: 'ERR_MAPPING_TEMPLATE', retryable: false });
    const jose = toContact({ contactId: 'c1', phone: '+919876543210', name: 'José' }, { defaultTenant: 'acme' });
    expect(await new SyncEngine({ http: new CannedHttpClient({ fetch: [notFound] }), secrets: () => SECRET }).sync(mapping, jose)).toMatchObject({ action: 'created' });
  });

  it.each([
    ['a line break', (v: string) => `${v}\r\nX-Injected: 1`, 'the bad-headers auth adapter set header Auth-Key with a character no header may hold (a line break, a control character, or one beyond Latin-1)'],
    ['an object', () => ({ key: 1 }), 'the bad-headers auth adapter set header Auth-Key as an object (a header value is a string)'],
    ['null', () => null, 'the bad-headers auth adapter set header Auth-Key as null (a header value is a string)'],
  ])('an auth adapter that sets a header value with %s: a permanent ERR_AUTH_ADAPTER, nothing sent', async (_what, value, message) => {
    const adapter: AuthAdapter = { kind: 'auth', name: 'bad-headers', apply: (req, secret) => { (req.headers as Record<string, unknown>)['Auth-Key'] = value(secret); } };
    const mapping = seedWith((t) => t.replace(/^auth: .*$/m, 'auth: { adapter: bad-headers, secret: "env:SEED_CRM_AUTH_KEY" }'), adapter);
    const { result, http } = await run(mapping);
    expect(http.requests).toEqual([]);
    expect(result).toMatchObject({ code: 'ERR_AUTH_ADAPTER', retryable: false, message, context: { step: 'fetch' } });
  });

  it('a header an auth adapter sets to undefined is left out, and a number is sent as its text', async () => {
    const adapter: AuthAdapter = { kind: 'auth', name: 'loose-headers', apply: (req, secret) => { const h = req.headers as Record<string, unknown>; h.accept = undefined; h['X-Key'] = secret; h['X-Version'] = 3; } };
    const mapping = seedWith((t) => t.replace(/^auth: .*$/m, 'auth: { adapter: loose-headers, secret: "env:SEED_CRM_AUTH_KEY" }'), adapter);
    const { result, http } = await run(mapping, { fetch: [notFound] });
    expect(result).toMatchObject({ action: 'created' });
    expect(http.requests[0]!.headers).not.toHaveProperty('accept');
    expect(http.requests[0]!.headers).toMatchObject({ 'X-Key': SECRET, 'X-Version': '3' });
  });

  it('an auth adapter\'s classified error has every string of its context masked (a url it tried)', async () => {
    const adapter: AuthAdapter = {
      kind: 'auth', name: 'login', apply: () => undefined,
      credential: async (secret) => { throw new PermanentError('ERR_CRM_AUTH', 'login refused', { context: { url: `https://crm.example.com/login?password=${secret}`, reason: `bad ${secret}` } }); },
    };
    const mapping = seedWith((t) => t.replace(/^auth: .*$/m, 'auth: { adapter: login, secret: "env:SEED_CRM_AUTH_KEY" }'), adapter);
    const { result } = await run(mapping);
    expect(result).toMatchObject({ code: 'ERR_CRM_AUTH', context: { url: 'https://crm.example.com/login?password=***', reason: 'bad ***' } });
  });
});

describe('named secrets (secrets:)', () => {
  // LeadSquared: an access key and a secret key in the query; Bitrix24: a webhook code in the URL path.
  const withSecrets = (t: string) => t
    .replace(/^auth: .*$/m, 'auth: { adapter: body-secret, in: query, field: secretKey, secret: "env:LSQ_SECRET_KEY" }\nsecrets: { accessKey: "env:LSQ_ACCESS_KEY", webhook: "file:/run/secrets/webhook" }')
    .replace(/^  fetch: .*$/m, '  fetch: { method: GET, url: "/rest/1/{{secrets.webhook}}/crm.contact.list.json", query: { phone: "{{contact.phone}}", accessKey: "{{secrets.accessKey}}" } }');
  const values: Record<string, string> = { 'env:LSQ_SECRET_KEY': 'sk/Secret+1', 'env:LSQ_ACCESS_KEY': 'u$r-access-key', 'file:/run/secrets/webhook': 'w3bh00k/code' };

  it('are put where the templates say, encoded, and masked in what is recorded', async () => {
    const http = new CannedHttpClient({ fetch: [notFound] });
    const result = await new SyncEngine({ http, secrets: (ref) => values[ref]! }).sync(seedWith(withSecrets), contact);
    expect(http.requests[0]!.url).toBe('https://crm.example.com/rest/1/w3bh00k%2Fcode/crm.contact.list.json?phone=%2B919876543210&accessKey=u%24r-access-key&secretKey=sk%2FSecret%2B1');
    expect(result.calls[0]!.url).toBe('https://crm.example.com/rest/1/***/crm.contact.list.json?phone=%2B919876543210&accessKey=***&secretKey=***');
  });

  it('an answer that echoes one back is masked in the reason', async () => {
    const http = new CannedHttpClient({ fetch: [{ status: 400, body: { status: 'Failed', reason: 'bad key u$r-access-key for w3bh00k/code' } }] });
    const err = await new SyncEngine({ http, secrets: (ref) => values[ref]! }).sync(seedWith(withSecrets), contact).then(() => undefined, (e: unknown) => e as SyncError);
    expect(err).toMatchObject({ code: 'ERR_CRM_REJECTED', context: { reason: 'bad key *** for ***', url: expect.stringContaining('/rest/1/***/') } });
    expect(JSON.stringify(err)).not.toMatch(/u\$r-access-key|w3bh00k/);
  });

  it('offline (golden examples, preview), each stands as the placeholder, shown as ***', async () => {
    const { requests } = await dryRun(seedWith(withSecrets), { contactId: 'c1', phone: '+919876543210' });
    expect(requests[0]!.url).toBe('https://crm.example.com/rest/1/***/crm.contact.list.json?phone=%2B919876543210&accessKey=***&secretKey=***');
  });

  it('a name that is not a name, or a value that is not a reference, is refused by the schema', () => {
    expect(() => seedWith((t) => withSecrets(t).replace('accessKey: "env:LSQ_ACCESS_KEY"', 'accessKey: "u$r-access-key"')))
      .toThrow(/secrets\.accessKey: must say where the secret is, env:NAME or file:\/path\/to\/secret, never the secret itself/);
    expect(() => seedWith((t) => withSecrets(t).replace('accessKey: "env:', '"access-key": "env:')))
      .toThrow(/secrets.*must be a letter, then letters, digits and "_"/);
  });
});

describe('the lead id after an update', () => {
  // Bitrix24 answers an update with {"result": true}; its create with {"result": 17}.
  const shared = (t: string) => t.replace('  leadId: body.lead_id', '  leadId: $string(body.result)');
  const update = (extra = '') => (t: string) => shared(t).replace('  update: { method: POST, url: "/crm/update/{{leadId}}" }', `  update: { method: POST, url: "/crm/update/{{leadId}}"${extra} }`);
  const stored = async (mapping: ReturnType<typeof seedWith>) => {
    const http = new CannedHttpClient({ update: [{ status: 200, body: { result: true } }] });
    return (await new SyncEngine({ http, secrets: () => SECRET }).sync(mapping, contact, { knownLeadId: '17' })).leadId;
  };

  it('is the id updated: the shared reader, written for fetch and create, does not read the update\'s answer', async () => {
    expect(await stored(seedWith(update()))).toBe('17');
  });

  it('is what the update endpoint\'s own leadId reader reads, when it has one (a CRM that answers with the surviving lead)', async () => {
    const http = new CannedHttpClient({ update: [{ status: 200, body: { result: true, merged_into: 'L-99' } }] });
    const mapping = seedWith(update(', responses: { leadId: body.merged_into }'));
    expect((await new SyncEngine({ http, secrets: () => SECRET }).sync(mapping, contact, { knownLeadId: '17' })).leadId).toBe('L-99');
    expect(await stored(mapping)).toBe('17'); // nothing read: the id updated
  });
});

describe('the rateLimited reader', () => {
  // Bitrix24 says it is over its limit with a 503 and {"error": "QUERY_LIMIT_EXCEEDED"}.
  const bitrix = (t: string) => t.replace(/^responses:\n/m, 'responses:\n  rateLimited: status = 429 or (status = 503 and body.error = "QUERY_LIMIT_EXCEEDED")\n');
  const failure = async (mapping: ReturnType<typeof seedWith>, answer: { status: number; body: unknown; headers?: Record<string, string> }) => {
    const http = new CannedHttpClient({ fetch: [answer] });
    return new SyncEngine({ http, secrets: () => SECRET }).sync(mapping, contact).then(() => undefined, (e: unknown) => e as SyncError);
  };

  it('makes the CRM\'s own way of saying "rate limit" an ERR_RATE_LIMITED (the runner pauses the tenant), with its Retry-After', async () => {
    const limited = await failure(seedWith(bitrix), { status: 503, headers: { 'retry-after': '2' }, body: { error: 'QUERY_LIMIT_EXCEEDED' } });
    expect(limited).toMatchObject({ code: 'ERR_RATE_LIMITED', retryable: true, retryAfterMs: 2000, message: 'the CRM answered 503: its rate limit' });
    expect(await failure(seedWith(bitrix), { status: 503, body: { error: 'INTERNAL' } })).toMatchObject({ code: 'ERR_CRM_UNAVAILABLE', retryable: true });
  });

  it('by default, a 429 alone', async () => {
    expect(await failure(seedWith((t) => t), { status: 429, body: {} })).toMatchObject({ code: 'ERR_RATE_LIMITED', retryable: true });
    expect(await failure(seedWith((t) => t), { status: 503, body: { error: 'QUERY_LIMIT_EXCEEDED' } })).toMatchObject({ code: 'ERR_CRM_UNAVAILABLE' });
  });
});

describe('CredentialContext.maskAlso', () => {
  it('masks a value an auth adapter came by itself (a session id from a login answer) in what the sync records', async () => {
    const session: AuthAdapter = {
      kind: 'auth', name: 'session-login',
      apply: (req, credential) => { req.headers['X-Session'] = credential; },
      credential: async (_secret, _options, ctx) => {
        ctx.maskAlso('refresh-91d2e'); // the login answer's refresh token, which never becomes the credential
        ctx.maskAlso(''); // nothing to mask: ignored, not every string masked
        return 'sess-7f3a9c';
      },
    };
    const mapping = seedWith((t) => t.replace(/^auth: .*$/m, 'auth: { adapter: session-login, secret: "env:SEED_CRM_AUTH_KEY" }'), session);
    const http = new CannedHttpClient({ fetch: [{ status: 400, body: { status: 'Failed', reason: 'session sess-7f3a9c (refresh-91d2e) cannot search' } }] });
    const err = await new SyncEngine({ http, secrets: () => SECRET }).sync(mapping, contact).then(() => undefined, (e: unknown) => e as SyncError);
    expect(err).toMatchObject({ code: 'ERR_CRM_REJECTED', context: { reason: 'session *** (***) cannot search' } });
    expect(http.requests[0]!.headers['X-Session']).toBe('sess-7f3a9c');
  });
});

describe('a failure of the operations themselves, through a flow', () => {
  it('keeps its own class: a create intent the store could not record is not the flow\'s failure (it is retried as before)', async () => {
    const http = new CannedHttpClient({ fetch: [notFound] });
    const diskFull = Object.assign(new Error('database or disk is full'), { code: 'SQLITE_FULL' });
    const err = await new SyncEngine({ http, secrets: () => SECRET })
      .sync(seedWith((t) => t), contact, { onCreateIntent: async () => { throw diskFull; } }).then(() => undefined, (e: unknown) => e);
    expect(err).toBe(diskFull);
    expect(http.requests.map((r) => r.step)).toEqual(['fetch']);
  });
});

describe('shared query and headers, and vars', () => {
  const shared = (t: string) => t
    .replace(/^auth: .*$/m, '$&\nsecrets: { accessKey: "env:ACCESS" }\nquery: { accessKey: "{{secrets.accessKey}}", v: "2" }\nheaders: { X-Api-Version: "2024-01", X-Tenant: "{{tenant}}" }')
    .replace('  create: { method: POST, url: /crm/create }', '  create: { method: POST, url: /crm/create, query: { v: "3" }, headers: { x-api-version: "2025-06" } }');

  it('every endpoint sends the mapping\'s query parameters and headers; its own of the same name (headers in any case) win', async () => {
    const http = new CannedHttpClient({ fetch: [notFound] });
    const result = await new SyncEngine({ http, secrets: (ref) => (ref === 'env:ACCESS' ? 'acc-55' : SECRET) }).sync(seedWith(shared), contact);
    const [fetch, create] = http.requests;
    expect(fetch!.url).toBe('https://crm.example.com/crm/fetch?accessKey=acc-55&v=2&phone=%2B919876543210&email=priya%40example.com');
    expect(fetch!.headers).toMatchObject({ 'X-Api-Version': '2024-01', 'X-Tenant': 'acme' });
    expect(create!.url).toBe('https://crm.example.com/crm/create?accessKey=acc-55&v=3');
    expect(create!.headers).toMatchObject({ 'x-api-version': '2025-06', 'X-Tenant': 'acme' });
    expect(create!.headers['X-Api-Version']).toBeUndefined();
    expect(result.calls[0]!.url).toContain('accessKey=***');
  });

  it('a header the mapping writes in another case than the defaults (Content-Type, Accept) replaces them: one header, the mapping\'s value', async () => {
    const vendor = seedWith((t) => t.replace(/^auth: .*$/m, '$&\nheaders: { Accept: application/vnd.api+json, Content-Type: application/vnd.api+json }'));
    const { http } = await run(vendor, { fetch: [notFound] });
    const create = http.requests[1]!;
    const named = (h: string) => Object.entries(create.headers).filter(([k]) => k.toLowerCase() === h);
    expect(named('content-type')).toEqual([['Content-Type', 'application/vnd.api+json']]);
    expect(named('accept')).toEqual([['Accept', 'application/vnd.api+json']]);
  });

  it('a shared template is checked for every endpoint, and named as the shared field', () => {
    expect(() => seedWith((t) => t.replace(/^auth: .*$/m, '$&\nheaders: { X-Lead: "{{leadId}}" }')))
      .toThrow(/headers\.X-Lead: \{\{leadId\}\} \(at 1:\d+\): leadId is never set here \(create is sent when there is no lead id yet\)/);
  });

  const withVars = (vars: string) => (t: string) => t
    .replace(/^payload: \|/m, `vars: '${vars}'\npayload: |`)
    .replace(/^  fetch: .*$/m, '  fetch: { method: GET, url: /crm/search, query: { mobile: "{{vars.searchPhone}}" } }');

  it('vars: values the requests use, made from the contact, that are not the payload (not sent as it, not hashed)', async () => {
    const http = new CannedHttpClient({ fetch: [notFound] });
    const mapping = seedWith(withVars('{"searchPhone": $substring($digits(contact.phone), 2)}'));
    const result = await new SyncEngine({ http, secrets: () => SECRET }).sync(mapping, contact);
    expect(http.requests[0]!.url).toBe('https://crm.example.com/crm/search?mobile=9876543210');
    expect(JSON.parse(http.requests[1]!.body!)).not.toHaveProperty('searchPhone');
    const plain = await new SyncEngine({ http: new CannedHttpClient({ fetch: [notFound] }), secrets: () => SECRET }).sync(seedWith((t) => t), contact);
    expect(result.payloadHash).toBe(plain.payloadHash);
  });

  it('vars that are not an object: a permanent error saying what they gave; a misspelt one is caught at load', async () => {
    const notObject = await run(seedWith(withVars('$digits(contact.phone)')));
    expect(notObject.result).toMatchObject({ code: 'ERR_VARS_INVALID', context: { step: 'map' } });
    expect((notObject.result as Error).message).toBe('the mapping\'s vars must be an object, got 919876543210');
    expect(() => seedWith(withVars('{"searchPhon": $digits(contact.phone)}'))).toThrow(/vars has no "searchPhone"; it has searchPhon/);
  });
});

describe('what a failing template or body says is masked too (they see the named secrets)', () => {
  const hooked = (create: string) => (t: string) => t.replace(/^auth: .*$/m, 'auth: { adapter: none }\nsecrets: { hook: "env:HOOK" }').replace(/^  create: .*$/m, `  create: ${create}`);
  const attempt = async (mapping: ReturnType<typeof seedWith>, who = contact) => {
    const http = new CannedHttpClient({ fetch: [notFound] });
    return new SyncEngine({ http, secrets: () => 'TOPSECRETHOOK' }).sync(mapping, who).then(() => undefined, (e: unknown) => e as SyncError);
  };

  it('a URL that cannot be formed, quoted with the secret in it', async () => {
    const portal = toContact({ contactId: 'c1', phone: '+919876543210', attributes: { portal: 'a b' } }, { defaultTenant: 'acme' });
    const err = await attempt(seedWith(hooked('{ method: POST, url: "https://{{contact.attributes.portal}}.bitrix24.com/rest/1/{{secrets.hook}}/crm.lead.add" }')), portal);
    expect(err).toMatchObject({ code: 'ERR_URL_INVALID' });
    expect(err!.message).toContain('/rest/1/***/crm.lead.add');
    expect(JSON.stringify({ message: err!.message, ...err })).not.toContain('TOPSECRETHOOK');
  });

  it('a body whose JSONata fails on the secret\'s value', async () => {
    const err = await attempt(seedWith(hooked(`{ method: POST, url: /crm/create, body: '{"n": $number(secrets.hook)}' }`)));
    expect(err).toMatchObject({ code: expect.stringMatching(/^ERR_MAPPING/) });
    expect(JSON.stringify({ message: err!.message, ...err })).not.toContain('TOPSECRETHOOK');
  });

  it('the fetch check compares URL and body, not headers (a request id made from the contact is no criterion)', async () => {
    const traced = seedWith((t) => t.replace(/^  fetch: .*$/m, '  fetch: { method: GET, url: /crm/fetch, query: { phone: "{{payload.phoen}}" }, headers: { X-Request-Id: "{{contact.contactId}}" } }'));
    const { result, http } = await run(traced, { fetch: [{ status: 200, body: { lead_id: 'someone-else' } }] });
    expect(result).toMatchObject({ code: 'ERR_FETCH_NO_CRITERION' });
    expect(http.requests).toEqual([]);
  });
});

describe('load-time checks of secrets and vars', () => {
  it('the payload or vars reading secrets is refused at load: only requests see them', () => {
    const withSecret = (t: string) => t.replace(/^auth: .*$/m, '$&\nsecrets: { key: "env:KEY" }');
    expect(() => seedWith((t) => withSecret(t).replace('"name": contact.name,', '"name": contact.name, "k": secrets.key,')))
      .toThrow(/payload: reads secrets, which only the requests see \(the payload is stored and compared\)/);
    expect(() => seedWith((t) => withSecret(t).replace(/^payload: \|/m, `vars: '{"k": $string(secrets.key)}'\npayload: |`)))
      .toThrow(/vars: reads secrets, which only the requests see/);
    // A name "secrets" inside a later step is the contact's own data: not refused.
    expect(() => seedWith((t) => t.replace('"name": contact.name,', '"name": contact.name, "s": contact.attributes.secrets,'))).not.toThrow();
  });

  it('vars written as an object name their keys, so a misspelt {{vars.x}} is caught at load', () => {
    const withVars = (use: string) => (t: string) => t
      .replace(/^payload: \|/m, `vars: '{"searchPhone": $digits(contact.phone)}'\npayload: |`)
      .replace(/^  fetch: .*$/m, `  fetch: { method: GET, url: /crm/search, query: { mobile: "{{${use}}}" } }`);
    expect(() => seedWith(withVars('vars.serchPhone'))).toThrow(/\{\{vars\.serchPhone\}\} \(at 1:\d+\): vars has no "serchPhone"; it has searchPhone/);
    expect(() => seedWith(withVars('vars.searchPhone'))).not.toThrow();
  });
});

describe('a flow that skips (ops.skip)', () => {
  const updateOnly = (t: string) => t.replace(/^flow: .*$/m, 'flow: update-only');

  it('the built-in update-only flow: a contact the CRM does not know is skipped with the reason, nothing written', async () => {
    const { result, http } = await run(seedWith(updateOnly), { fetch: [notFound] });
    expect(result).toMatchObject({ action: 'skipped', reason: 'the CRM has no lead for this contact, and the update-only flow never creates one', warnings: [] });
    expect((result as { leadId?: string }).leadId).toBeUndefined();
    expect(http.requests.map((r) => r.step)).toEqual(['fetch']);
  });

  it('a skip after a write keeps the write\'s outcome, with a warning', async () => {
    const flow: FlowAdapter = { kind: 'flow', name: 'writes-then-skips', requires: ['fetch', 'create', 'update'], run: async (ops) => { await ops.create(); return ops.skip('changed my mind'); } };
    const { result } = await run(seedWith((t) => t.replace(/^flow: .*$/m, 'flow: writes-then-skips'), flow));
    expect(result).toMatchObject({ action: 'created', leadId: expect.any(String), warnings: ['the writes-then-skips flow adapter skipped the contact after a write; the write\'s outcome is kept'] });
  });
});

describe('golden examples of a flow that skips', () => {
  const example = (reason: string) => (t: string) => t.replace(/^flow: .*$/m, 'flow: update-only').replace(/^examples:\n/m, `examples:
  - name: a contact the CRM does not know is skipped
    contact: { contactId: c9, phone: "+919876543219" }
    expect:
      - { method: GET, url: "/crm/fetch?phone=%2B919876543219" }
    result: { action: skipped, reason: "${reason}" }
`);

  it('an example can expect a skip and (a part of) its reason', async () => {
    const failures = (await checkExamples(seedWith(example('never creates')))).filter((f) => f.example.includes('skipped'));
    expect(failures).toEqual([]);
    const wrong = (await checkExamples(seedWith(example('rate limit')))).filter((f) => f.example.includes('skipped'));
    expect(wrong).toEqual([{ example: expect.stringContaining('a contact the CRM does not know is skipped'), problems: ['expected a skip saying "rate limit", got "the CRM has no lead for this contact, and the update-only flow never creates one"'] }]);
  });
});
