/**
 * SSRF: a customer's mapping (and the contact data templated into it) decides where requests go. Every address that
 * reaches the operator's own network (private, loopback, link-local / cloud metadata, and IPv6 forms embedding them)
 * is refused unless the operator allow-listed the host, when the socket connects and on every redirect.
 */
import type dns from 'node:dns';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { GotHttpClient, isPrivateAddress, SyncEngine, type HttpRequest } from '@crm-sync/core';
import { resolveConfig, startDaemon, createLogger } from '@crm-sync/runner';
import { startReferenceCrm, type ReferenceCrm } from '@crm-sync/testkit';
import { compile, contact, failure, mappingFile, tinyServer, type TinyServer } from './support';

process.env.SECURITY_TEST_CRM_KEY = 'ssrf-test-key';

const request = (url: string): HttpRequest => ({ method: 'GET', url, headers: {}, timeoutMs: 2000, maxResponseBytes: 65536 });

describe('addresses that reach the operator\'s network', () => {
  it.each([
    '127.0.0.1', '10.0.0.1', '169.254.169.254', '100.100.100.200', '192.168.1.1', '0.0.0.0', '::1', '::', 'fe80::1', 'fe80::1%eth0', 'fd00:ec2::254',
    // IPv4-mapped (dotted and hex), IPv4-compatible, NAT64 well-known and local-use prefixes, 6to4, Teredo: all carry a private IPv4.
    '::ffff:127.0.0.1', '::ffff:7f00:1', '::ffff:a9fe:a9fe', '::127.0.0.1', '64:ff9b::169.254.169.254', '64:ff9b::a9fe:a9fe', '64:ff9b::10.0.0.1',
    '64:ff9b::7f00:1', '64:ff9b:1::a00:1', '2002:a9fe:a9fe::1', '2001:0:4136:e378:8000:63bf:80ff:fffe',
  ])('%s is private', (address) => {
    expect(isPrivateAddress(address)).toBe(true);
  });

  it.each(['8.8.8.8', '2606:4700::1111', '::ffff:8.8.8.8', '64:ff9b::8.8.8.8', '2002:808:808::1'])('%s is public', (address) => {
    expect(isPrivateAddress(address)).toBe(false);
  });
});

describe('the connect path (GotHttpClient)', () => {
  let server: TinyServer;
  beforeAll(async () => {
    server = await tinyServer((req, res) => {
      const to = /^\/redirect\?to=(.*)$/.exec(req.url ?? '');
      if (to) { res.writeHead(Number(/status=(\d+)/.exec(req.headers['x-status'] as string ?? '')?.[1] ?? 302), { location: decodeURIComponent(to[1]) }); return void res.end(); }
      res.writeHead(200, { 'content-type': 'application/json' });
      res.end('{"ok":true}');
    });
  });
  afterAll(() => server.close());

  /** A resolver the test controls: every call is recorded; `answer` decides the addresses. */
  function resolver(answer: (call: number) => dns.LookupAddress[]) {
    const calls: string[] = [];
    return { calls, resolveHost: async (hostname: string) => { calls.push(hostname); return answer(calls.length); } };
  }

  it('resolves a name once per connection, when connecting, and refuses a private answer: nothing reaches the server', async () => {
    const r = resolver(() => [{ address: '127.0.0.1', family: 4 }]);
    const client = new GotHttpClient({ resolveHost: r.resolveHost });
    const before = server.connections();
    const err = await failure(client.send(request(`https://rebind.example:${server.port}/`)));
    client.close();
    expect(err).toMatchObject({ code: 'ERR_URL_FORBIDDEN', retryable: false, message: expect.stringContaining('rebind.example resolves to private address 127.0.0.1') });
    expect(r.calls).toEqual(['rebind.example']);
    expect(server.connections()).toBe(before);
  });

  it('the resolver\'s answer is where the socket goes (so the check and the connection cannot disagree)', async () => {
    const r = resolver(() => [{ address: '127.0.0.1', family: 4 }]);
    const client = new GotHttpClient({ allowHosts: ['crm.internal.example'], resolveHost: r.resolveHost });
    const res = await client.send(request(`http://crm.internal.example:${server.port}/`));
    client.close();
    expect(res.status).toBe(200);
    expect(r.calls).toEqual(['crm.internal.example']);
  });

  it('DNS rebinding: a name that answered public before answers private now; each new connection is checked again', async () => {
    // Calls 1..n answer a public address first in the list and a private one after it (round-robin rebinding), then only private.
    const r = resolver((n) => (n === 1 ? [{ address: '93.184.216.34', family: 4 }, { address: '127.0.0.1', family: 4 }] : [{ address: '::ffff:127.0.0.1', family: 6 }]));
    const client = new GotHttpClient({ resolveHost: r.resolveHost });
    const url = `https://rebind.example:${server.port}/`;
    expect(await failure(client.send(request(url)))).toMatchObject({ code: 'ERR_URL_FORBIDDEN', message: expect.stringContaining('127.0.0.1') });
    expect(await failure(client.send(request(url)))).toMatchObject({ code: 'ERR_URL_FORBIDDEN', message: expect.stringContaining('::ffff:127.0.0.1') });
    client.close();
    expect(r.calls).toHaveLength(2);
  });

  it.each([['NAT64 of the metadata address', '64:ff9b::a9fe:a9fe'], ['NAT64 of loopback', '64:ff9b::7f00:1'], ['IPv4-mapped loopback', '::ffff:7f00:1']])(
    'refuses a name resolving to %s (%s)', async (_what, address) => {
      const client = new GotHttpClient({ resolveHost: async () => [{ address, family: 6 }] });
      expect(await failure(client.send(request('https://crm.example/')))).toMatchObject({ code: 'ERR_URL_FORBIDDEN' });
      client.close();
    });

  it.each([
    'https://[64:ff9b::a9fe:a9fe]/latest/meta-data', 'https://[::ffff:169.254.169.254]/', 'https://2852039166/', 'https://0xa9.0xfe.0xa9.0xfe/',
    'https://0251.0376.0251.0376/', 'https://127.1/', 'https://[::]/', 'http://169.254.169.254/latest/meta-data',
  ])('refuses the IP literal in %s before connecting', async (url) => {
    const client = new GotHttpClient({ resolveHost: async () => { throw new Error('an IP literal is never resolved'); } });
    expect(await failure(client.send(request(url)))).toMatchObject({ code: 'ERR_URL_FORBIDDEN' });
    client.close();
  });

  describe('redirects from an allowed host', () => {
    const client = new GotHttpClient({ allowHosts: ['127.0.0.1'] });
    afterAll(() => client.close());
    const redirect = (to: string) => `${server.url}/redirect?to=${encodeURIComponent(to)}`;

    it.each([
      'http://169.254.169.254/latest/meta-data/iam/security-credentials/', 'https://169.254.169.254/', 'http://[::ffff:a9fe:a9fe]/',
      'http://[64:ff9b::a9fe:a9fe]/', 'https://metadata.google.internal/computeMetadata/v1/', 'http://localhost:1/', 'https://crm.example/',
    ])('a 302 to %s is refused', async (to) => {
      const before = server.seen.length;
      const err = await failure(client.send(request(redirect(to))));
      expect(err).toMatchObject({ code: 'ERR_URL_FORBIDDEN', retryable: false });
      expect(server.seen.length).toBe(before + 1);
    });

    it('a 307 or 308 to another host is refused the same way', async () => {
      for (const status of [301, 303, 307, 308]) {
        const res = client.send({ ...request(redirect('http://169.254.169.254/')), headers: { 'x-status': `status=${status}` } });
        expect(await failure(res)).toMatchObject({ code: 'ERR_URL_FORBIDDEN' });
      }
    });

    it('a redirect on the same allowed host is followed', async () => {
      expect((await client.send(request(redirect('/ok')))).status).toBe(200);
    });
  });
});

describe('through the engine: a mapping or contact data steering the host', () => {
  let crm: ReferenceCrm;
  let engine: SyncEngine;
  let client: GotHttpClient;
  beforeAll(async () => {
    crm = await startReferenceCrm({ auth: { style: 'auth-key', key: 'ssrf-test-key' } });
    client = new GotHttpClient({ allowHosts: ['127.0.0.1'] });
    engine = new SyncEngine({ http: client });
  });
  afterAll(async () => { client.close(); await crm.close(); });
  beforeEach(() => crm.reset());

  // The whole host comes from a contact attribute in an absolute-URL template.
  const hostFromAttribute = compile({
    baseUrl: 'https://crm.example.com',
    endpoints: {
      fetch: { method: 'GET', url: 'https://{{contact.attributes.crm_host}}/crm/fetch', query: { phone: '{{contact.phone}}' } },
      create: { method: 'POST', url: 'https://{{contact.attributes.crm_host}}/crm/create' },
      update: { method: 'POST', url: 'https://{{contact.attributes.crm_host}}/crm/update/{{leadId}}' },
    },
  });

  // (127.0.0.1 itself is on this client's allow-list: the operator's choice, so it is not among them.)
  it.each(['169.254.169.254', '127.0.0.2', '10.0.0.7', '2852039166', '0x7f.0.0.2', 'localhost'])(
    'a contact attribute crm_host=%s is refused with ERR_URL_FORBIDDEN, before any request', async (host) => {
      const err = await failure(engine.sync(hostFromAttribute, contact({ attributes: { crm_host: host } })));
      expect(err).toMatchObject({ code: 'ERR_URL_FORBIDDEN', retryable: false, context: expect.objectContaining({ step: 'fetch', contactId: 'c1' }) });
      expect(crm.requests()).toHaveLength(0);
    });

  it.each(['[::1]', '[64:ff9b::a9fe:a9fe]', 'evil.example@169.254.169.254', '169.254.169.254#', '169.254.169.254/latest/meta-data?'])(
    'an attribute that tries URL syntax (%s) is percent-encoded, so it cannot name a private host either', async (host) => {
      const err = await failure(engine.sync(hostFromAttribute, contact({ attributes: { crm_host: host } })));
      expect(err).toMatchObject({ code: 'ERR_URL_INVALID', retryable: false, message: expect.stringContaining('endpoints.fetch.url: rendered "https://') });
      expect(crm.requests()).toHaveLength(0);
    });

  it('a stored lead id cannot move the request to another host (it stays one path segment)', async () => {
    const m = compile({ endpoints: { fetch: { method: 'GET', url: '/crm/fetch' }, create: { method: 'POST', url: '/crm/create' }, update: { method: 'POST', url: '{{leadId}}' } } });
    const err = await failure(engine.sync(m, contact(), { knownLeadId: '//169.254.169.254/latest', baseUrl: crm.url }));
    // The id became the path /%2F%2F169.254.169.254%2Flatest on the allowed CRM, which does not know it (then the
    // engine forgot the stale id and matched again): only the CRM was asked, never the metadata service.
    expect(err.code).not.toBe('ERR_URL_FORBIDDEN');
    expect(crm.requests()[0]!.path).toBe('/%2F%2F169.254.169.254%2Flatest');
  });

  it.each(['http://169.254.169.254', 'https://169.254.169.254', 'https://[::ffff:a9fe:a9fe]', `https://localhost:1`])(
    'a baseUrl of %s is refused', async (baseUrl) => {
      const err = await failure(engine.sync(compile(), contact(), { baseUrl }));
      expect(err).toMatchObject({ code: 'ERR_URL_FORBIDDEN' });
      expect(failureDetailsOf(err)).toEqual([expect.objectContaining({ step: 'fetch', reason: expect.any(String) })]);
    });

  it('the allow-listed CRM is reachable over plain http: the controls above are not just a dead network', async () => {
    const r = await engine.sync(compile(), contact(), { baseUrl: crm.url });
    expect(r.action).toBe('created');
  });
});

function failureDetailsOf(err: unknown): unknown {
  return (err as { syncDetails?: { calls: unknown[] } }).syncDetails?.calls;
}

describe('through the daemon: a tenant whose CRM is (or becomes) a private address', () => {
  let crm: ReferenceCrm;
  let dataDir: string;
  beforeEach(async () => {
    crm = await startReferenceCrm({ auth: { style: 'auth-key', key: 'ssrf-test-key' } });
    dataDir = mkdtempSync(join(tmpdir(), 'crm-sync-ssrf-'));
  });
  afterEach(async () => {
    await crm.close();
    rmSync(dataDir, { recursive: true, force: true });
  });

  async function runOne(mapping: string, baseUrl: string | undefined, attributes: Record<string, string>) {
    const config = resolveConfig({
      listen: '127.0.0.1:0', dataDir, allowHosts: ['127.0.0.1'], retry: { base: '50ms', max: '100ms', budget: '1s' },
      tenants: { acme: { mapping, baseUrl, quiet: '100ms', maxWait: '1s' } },
    }, { name: 'ssrf test', baseDir: dataDir, labels: {} }, {});
    const daemon = await startDaemon(config, { logger: createLogger({ level: 'silent' }) });
    try {
      const res = await fetch(`${daemon.url}/v1/events`, {
        method: 'POST', headers: { 'content-type': 'application/json' },
        body: JSON.stringify({ eventId: 'e1', contactId: 'c1', phone: '+919876543210', name: 'Priya', attributes }),
      });
      expect(res.status).toBe(202);
      await daemon.runner.whenIdle();
      return await daemon.runner.deadLetters('acme');
    } finally {
      await daemon.stop();
    }
  }

  it('a baseUrl host that resolves to loopback (not allow-listed by name): dead letter ERR_URL_FORBIDDEN, no request', async () => {
    const dead = await runOne(mappingFile(), `https://localhost:${crm.port}`, {});
    expect(dead).toEqual([expect.objectContaining({ contactId: 'c1', cause: 'permanent', error: expect.objectContaining({ code: 'ERR_URL_FORBIDDEN' }) })]);
    expect(crm.requests()).toHaveLength(0);
  });

  it('a contact attribute steering the host to the metadata address: dead letter ERR_URL_FORBIDDEN, no request', async () => {
    const file = mappingFile({
      baseUrl: crm.url,
      endpoints: {
        fetch: { method: 'GET', url: 'http://{{contact.attributes.region}}/crm/fetch', query: { phone: '{{contact.phone}}' } },
        create: { method: 'POST', url: '/crm/create' },
        update: { method: 'POST', url: '/crm/update/{{leadId}}' },
      },
    });
    const dead = await runOne(file, undefined, { region: '169.254.169.254' });
    expect(dead).toEqual([expect.objectContaining({ contactId: 'c1', error: expect.objectContaining({ code: 'ERR_URL_FORBIDDEN', step: 'fetch' }) })]);
    expect(crm.requests()).toHaveLength(0);
  });
});
