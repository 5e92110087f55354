/**
 * The mapping sandbox: a customer's mapping is code we run. It may not run forever, recurse without end, pull an
 * unbounded answer into memory, or read anything outside the data it is given (prototypes, process, environment).
 */
import zlib from 'node:zlib';
import { compileTemplate, GotHttpClient, MappingError, SyncEngine } from '@crm-sync/core';
import { startReferenceCrm, type ReferenceCrm } from '@crm-sync/testkit';
import { compile, contact, failure, tinyServer, type TinyServer } from './support';

const KEY = 'sandbox-crm-key-5qv';
process.env.SECURITY_TEST_CRM_KEY = KEY;
// Anything in the environment must stay out of reach of expressions and templates.
const CANARY = 'env-canary-7d1f0c';
process.env.SANDBOX_CANARY = CANARY;

let crm: ReferenceCrm;
let client: GotHttpClient;
let engine: SyncEngine;
beforeAll(async () => {
  crm = await startReferenceCrm({ auth: { style: 'auth-key', key: KEY } });
  client = new GotHttpClient({ allowHosts: ['127.0.0.1'] });
  engine = new SyncEngine({ http: client });
});
afterAll(async () => { client.close(); await crm.close(); });
beforeEach(() => crm.reset());

describe('JSONata time and depth caps, through engine.sync', () => {
  it.each([
    ['an endless loop in the payload', { payload: '($loop := function($i) { $loop($i + 1) }; $loop(0))' }, 'payload'],
    ['deep recursion in the payload', { payload: '($f := function($n) { $n = 0 ? 0 : 1 + $f($n - 1) }; $f(1000000))' }, 'payload'],
    ['a huge range', { payload: '{"phone": contact.phone, "n": $sum([1..10000000].($ * 2))}' }, 'payload'],
    ['a loop smuggled through $eval of a contact attribute', { payload: '{"phone": contact.phone, "x": $eval(contact.attributes.code)}' }, 'payload'],
    ['catastrophic regex backtracking on the contact\'s name', { payload: '{"phone": contact.phone, "ok": $contains(contact.name, /^(a+)+$/)}' }, 'payload'],
    ['a runaway response reader', { responses: { notFound: '($l := function($i) { $l($i + 1) }; $l(0))' } }, 'responses.notFound'],
  ])('%s is stopped with ERR_MAPPING_EVALUATION naming the field', async (_what, overrides, field) => {
    const started = Date.now();
    const who = contact({ name: `${'a'.repeat(40)}!`, attributes: { code: '($l := function($i) { $l($i + 1) }; $l(0))' } });
    const err = await failure(engine.sync(compile(overrides), who, { baseUrl: crm.url }));
    expect(err).toBeInstanceOf(MappingError);
    expect(err).toMatchObject({ code: 'ERR_MAPPING_EVALUATION', retryable: false, errors: [{ field, message: expect.stringMatching(/ran longer than|recursed deeper than|Evaluation timeout/) }] });
    expect(Date.now() - started).toBeLessThan(2000);
    // Nothing is created from a payload that never finished.
    expect(crm.requests().filter((r) => r.route === 'create')).toHaveLength(0);
  });

  it('a regex used fairly still works under the cap', async () => {
    const m = compile({ payload: '{"phone": contact.phone, "name": $replace(contact.name, /\\s+/, " "), "custom_fields": {"vip": $contains(contact.name, /^pri/i)}}' });
    const r = await engine.sync(m, contact({ name: 'Priya   Sharma' }), { baseUrl: crm.url });
    expect(r.payload).toEqual({ phone: '+919876543210', name: 'Priya Sharma', custom_fields: { vip: true } });
  });
});

describe('response bodies are capped (maxResponseBytes, default 1 MiB)', () => {
  let hostile: TinyServer;
  const FIFTY_MB = 50 * 1024 * 1024;
  const gzipBomb = zlib.gzipSync(Buffer.alloc(FIFTY_MB, 0x20));
  beforeAll(async () => {
    hostile = await tinyServer((req, res) => {
      if (req.url!.startsWith('/declared')) {
        res.writeHead(200, { 'content-type': 'application/json', 'content-length': FIFTY_MB });
        const chunk = Buffer.alloc(1 << 20, 0x20);
        let sent = 0;
        const pump = () => { while (sent < FIFTY_MB && res.write(chunk)) sent += chunk.length; if (sent < FIFTY_MB) res.once('drain', () => { sent += chunk.length; pump(); }); else res.end(); };
        return pump();
      }
      if (req.url!.startsWith('/chunked')) {
        res.writeHead(200, { 'content-type': 'application/json' });
        const chunk = Buffer.alloc(256 * 1024, 0x20);
        let sent = 0;
        const pump = () => { while (sent < FIFTY_MB && res.write(chunk)) sent += chunk.length; if (sent < FIFTY_MB && !res.destroyed) res.once('drain', () => { sent += chunk.length; pump(); }); else res.end(); };
        return pump();
      }
      // 50 KB on the wire, 50 MB once decompressed, with an honest Content-Length for the compressed bytes.
      res.writeHead(200, { 'content-type': 'application/json', 'content-encoding': 'gzip', 'content-length': gzipBomb.length });
      res.end(gzipBomb);
    });
  });
  afterAll(() => hostile.close());

  it.each(['declared', 'chunked', 'gzip-bomb'])('a 50 MB answer (%s) is ERR_RESPONSE_TOO_LARGE, and memory stays bounded', async (kind) => {
    global.gc?.();
    const base = process.memoryUsage();
    let peak = 0;
    const sampler = setInterval(() => {
      const m = process.memoryUsage();
      peak = Math.max(peak, m.arrayBuffers - base.arrayBuffers + m.heapUsed - base.heapUsed);
    }, 2);
    const m = compile({ endpoints: { fetch: { method: 'GET', url: `/${kind}`, query: { phone: '{{contact.phone}}' } }, create: { method: 'POST', url: '/crm/create' }, update: { method: 'POST', url: '/u/{{leadId}}' } } });
    const err = await failure(engine.sync(m, contact(), { baseUrl: hostile.url }));
    clearInterval(sampler);
    expect(err).toMatchObject({ code: 'ERR_RESPONSE_TOO_LARGE', retryable: false, context: expect.objectContaining({ step: 'fetch' }) });
    expect(peak).toBeLessThan(24 * 1024 * 1024);
  });

  it('a small gzip answer is still read', async () => {
    const small = await tinyServer((_req, res) => {
      res.writeHead(200, { 'content-type': 'application/json', 'content-encoding': 'gzip' });
      res.end(zlib.gzipSync(JSON.stringify({ lead_id: 'L-gz' })));
    });
    try {
      const m = compile({ flow: 'upsert', endpoints: { upsert: { method: 'POST', url: '/upsert' } } });
      expect((await engine.sync(m, contact(), { baseUrl: small.url })).leadId).toBe('L-gz');
    } finally { await small.close(); }
  });
});

describe('templates cannot reach outside their data', () => {
  const probes = {
    ctor: '{{constructor.constructor}}',
    ctorName: '{{contact.constructor.name}}',
    proto: '{{__proto__}}',
    protoOfContact: '{{contact.__proto__.constructor}}',
    lookupCtor: '{{lookup contact "constructor"}}',
    lookupProto: '{{lookup (lookup contact "__proto__") "constructor"}}',
    withCtor: '{{#with contact}}{{constructor}}{{/with}}',
    eachProto: '{{#each contact.__proto__}}{{@key}}{{/each}}',
    defineGetter: '{{__defineGetter__}}',
    hasOwn: '{{contact.hasOwnProperty}}',
    env: '{{process.env.SANDBOX_CANARY}}',
  };

  it('a mapping naming what its data does not have is refused when compiled', () => {
    const err = (() => { try { compile({ endpoints: { fetch: { method: 'GET', url: '/crm/fetch', query: probes }, create: { method: 'POST', url: '/crm/create' }, update: { method: 'POST', url: '/crm/update/{{leadId}}' } } }); } catch (e) { return e; } })();
    expect(err).toBeInstanceOf(MappingError);
    const refused = (err as MappingError).errors.map((e) => e.field.replace('endpoints.fetch.query.', ''));
    // lookup's arguments and paths inside #with are whatever the data holds: those are left to rendering (below).
    expect(refused.sort()).toEqual(['ctor', 'ctorName', 'defineGetter', 'eachProto', 'env', 'hasOwn', 'proto', 'protoOfContact']);
  });

  it('every probe renders empty in query and headers; in a (strict) URL path it is a missing value', async () => {
    const data = { contact: contact(), leadId: 'L1', tenant: 'acme', payload: { phone: '+919876543210' } };
    for (const [k, probe] of Object.entries(probes)) {
      expect([k, compileTemplate(probe, `endpoints.fetch.query.${k}`, { strict: false, encode: false }).render(data)]).toEqual([k, '']);
    }
    const strict = compileTemplate('/crm/create/{{constructor.constructor}}', 'endpoints.create.url', { strict: true, encode: true });
    expect(() => strict.render(data)).toThrow(expect.objectContaining({ code: 'ERR_MAPPING_TEMPLATE', errors: [{ field: 'endpoints.create.url', message: 'cannot render: "constructor" has no value here (template position 1:15)' }] }));
    // Through a whole sync, the probes a mapping can hold (see above).
    const compiles = { lookupCtor: probes.lookupCtor, lookupProto: probes.lookupProto, withCtor: probes.withCtor };
    const m = compile({
      endpoints: {
        fetch: { method: 'GET', url: '/crm/fetch', query: { phone: '{{contact.phone}}', ...compiles }, headers: Object.fromEntries(Object.entries(compiles).map(([k, v]) => [`x-${k}`, v])) },
        create: { method: 'POST', url: '/crm/create' },
        update: { method: 'POST', url: '/crm/update/{{leadId}}' },
      },
    });
    await engine.sync(m, contact(), { baseUrl: crm.url });
    const logged = crm.requests();
    expect(logged.map((r) => r.route)).toEqual(['fetch', 'create']);
    expect(logged[0]!.query).toEqual({ phone: '+919876543210' });
    for (const k of Object.keys(compiles)) expect([k, logged[0]!.headers[`x-${k.toLowerCase()}`] ?? '']).toEqual([k, '']);
    expect(JSON.stringify(logged)).not.toMatch(/function|native code|Object|CANARY|env-canary/);
  });
});

describe('JSONata cannot reach process, require or the environment', () => {
  it.each([
    '$eval("process")', '$eval("$process.env")', 'process.env.SANDBOX_CANARY', '$$.constructor', '$.constructor.constructor("return process")()',
    '$string($)', '$string($$)', '$keys($$)', '$eval("require(\'fs\')")', '$lookup($, "constructor")', '$lookup($$, "__proto__")',
    '$string(contact.constructor)', '$string($eval)', '$sift($, function($v, $k) { true })', '$string($environment)', '$string($spread($$))',
  ])('%s: no env value, function source or prototype leaks', async (expr) => {
    const m = compile({ payload: `{"phone": contact.phone, "name": contact.name, "custom_fields": {"x": ${expr}}}` });
    const outcome = await engine.renderPayload(m, contact()).then((r) => r.payload, (e: Error) => e.message);
    const text = JSON.stringify(outcome) ?? '';
    expect(text).not.toContain(CANARY);
    expect(text).not.toContain(KEY);
    expect(text).not.toMatch(/native code|process\.env|\[Function|require\(/i);
  });
});
