/**
 * The ingest API faces clients we do not control: the bearer token is compared in constant time, bodies are capped,
 * each client address is rate-limited, and no answer carries a stack trace or an internal path.
 */
import http from 'node:http';
import { bearerMatches } from '../../packages/runner/src/http/auth';
import type { Daemon } from '@crm-sync/runner';
import { event, useDaemonEnv } from '../daemon.support';

const TOKEN = 'ingest-token-Qm4t-8c1b93a7e2';
process.env.SECURITY_INGEST_TOKEN = TOKEN;

const fixture = useDaemonEnv();

async function start(extra: Record<string, unknown> = {}): Promise<Daemon> {
  return fixture.start(fixture.env.config({ ingestToken: 'env:SECURITY_INGEST_TOKEN', ...extra }, { quiet: '1h', maxWait: '2h' }));
}

interface Answer { status: number; headers: http.IncomingHttpHeaders; text: string }

/** A raw request (node:http, not fetch: bytes exactly as given, and a chosen source address). */
function send(url: string, opts: { method?: string; path?: string; headers?: Record<string, string | number>; body?: Buffer | string; from?: string; chunked?: boolean } = {}): Promise<Answer> {
  const u = new URL(url);
  return new Promise((resolve, reject) => {
    const req = http.request({
      host: u.hostname, port: u.port, method: opts.method ?? 'POST', path: opts.path ?? '/v1/events', localAddress: opts.from,
      headers: { authorization: `Bearer ${TOKEN}`, 'content-type': 'application/json', ...opts.headers },
      agent: false,
    }, (res) => {
      const chunks: Buffer[] = [];
      res.on('data', (c: Buffer) => chunks.push(c));
      res.on('end', () => resolve({ status: res.statusCode!, headers: res.headers, text: Buffer.concat(chunks).toString('utf8') }));
    });
    req.on('error', reject);
    if (opts.chunked && opts.body) {
      const body = Buffer.from(opts.body);
      for (let i = 0; i < body.length; i += 1024) req.write(body.subarray(i, i + 1024));
      req.end();
    } else req.end(opts.body);
  });
}

/** No stack frames, source paths or exception class names in what a client sees. */
function expectNoInternals(answer: Answer): void {
  expect(answer.text).not.toMatch(/\n\s+at |\/work\/|node_modules|\.[jt]s:\d+|\b(TypeError|RangeError|SyntaxError)\b|ERR_INTERNAL/);
}

describe('bearer token', () => {
  it('is compared on equal-length digests: any length of wrong token is simply false, never a throw', () => {
    for (const guess of ['', 'x', TOKEN.slice(0, -1), `${TOKEN}x`, TOKEN.toUpperCase(), 'y'.repeat(100_000), `${TOKEN}\u0000`, 'ü'.repeat(TOKEN.length)]) {
      expect(bearerMatches(`Bearer ${guess}`, TOKEN)).toBe(false);
    }
    expect(bearerMatches(`Bearer ${TOKEN}`, TOKEN)).toBe(true);
    expect(bearerMatches(`bearer   ${TOKEN}`, TOKEN)).toBe(true);
    expect(bearerMatches(undefined, TOKEN)).toBe(false);
    expect(bearerMatches(TOKEN, TOKEN)).toBe(false);
  });

  it('wrong tokens of every length get 401 on every /v1 route; the right one gets through', async () => {
    const d = await start();
    const guesses = ['', 'x', TOKEN.slice(0, -1), `${TOKEN}x`, 'z'.repeat(8000), `Basic ${Buffer.from(`u:${TOKEN}`).toString('base64')}`];
    for (const [method, path] of [['POST', '/v1/events'], ['GET', '/v1/status'], ['GET', '/v1/dead-letters'], ['GET', '/v1/tenants/acme/contacts/c1'], ['POST', '/v1/dead-letters/replay']]) {
      for (const g of guesses) {
        const a = await send(d.url, { method, path, headers: { authorization: g.startsWith('Basic') ? g : `Bearer ${g}` }, body: method === 'POST' ? JSON.stringify(event(1)) : undefined });
        expect([method, path, a.status, JSON.parse(a.text).error.code]).toEqual([method, path, 401, 'ERR_UNAUTHORIZED']);
        expect(a.text).not.toContain(TOKEN);
      }
      const none = await send(d.url, { method, path, headers: { authorization: '' } });
      expect(none.status).toBe(401);
    }
    expect((await send(d.url, { body: JSON.stringify(event(1)) })).status).toBe(202);
  });
});

describe('request size', () => {
  it.each([false, true])('a body over maxBodyBytes is 413 (chunked: %s), and the daemon keeps serving', async (chunked) => {
    const d = await start({ maxBodyBytes: 4096 });
    const big = JSON.stringify(Array.from({ length: 100 }, (_, i) => event(i)));
    const a = await send(d.url, { body: big, chunked });
    expect(a.status).toBe(413);
    expect(JSON.parse(a.text).error.code).toBe('ERR_BODY_TOO_LARGE');
    expect((await send(d.url, { body: JSON.stringify(event(1)) })).status).toBe(202);
  });
});

describe('rate limit per client address', () => {
  it('answers 429 with Retry-After beyond the limit, counts wrong tokens too, spares other addresses and the probes', async () => {
    const d = await start({ clientRequestsPerSecond: 5 });
    const answers: Answer[] = [];
    for (let i = 0; i < 8; i++) answers.push(await send(d.url, { method: 'GET', path: '/v1/status', headers: { authorization: i % 2 ? 'Bearer wrong' : `Bearer ${TOKEN}` } }));
    const statuses = answers.map((a) => a.status);
    expect(statuses.slice(0, 5)).toEqual([200, 401, 200, 401, 200]);
    expect(statuses.slice(5)).toEqual([429, 429, 429]);
    const limited = answers[5]!;
    expect(Number(limited.headers['retry-after'])).toBeGreaterThanOrEqual(1);
    expect(JSON.parse(limited.text).error).toMatchObject({ code: 'ERR_RATE_LIMITED', message: expect.stringContaining('retry after') });
    // Another address (all of 127.0.0.0/8 is loopback) has its own bucket; health checks and metrics are not limited.
    expect((await send(d.url, { method: 'GET', path: '/v1/status', from: '127.0.0.2' })).status).toBe(200);
    expect((await send(d.url, { method: 'GET', path: '/healthz' })).status).toBe(200);
    expect((await send(d.url, { method: 'GET', path: '/metrics' })).status).toBe(200);
    // The bucket refills: after the Retry-After the client is served again.
    await new Promise((r) => setTimeout(r, 1000));
    expect((await send(d.url, { method: 'GET', path: '/v1/status' })).status).toBe(200);
  });

  it('is on by default (documented default) and 0 turns it off', async () => {
    const d = await start({ clientRequestsPerSecond: 0 });
    const statuses = await Promise.all(Array.from({ length: 300 }, () => send(d.url, { method: 'GET', path: '/v1/status' }).then((a) => a.status)));
    expect(new Set(statuses)).toEqual(new Set([200]));
    expect(fixture.env.config().clientRequestsPerSecond).toBe(200);
  });
});

describe('no stack traces or internal paths in any error answer', () => {
  const nested = (depth: number) => `${'['.repeat(depth)}${']'.repeat(depth)}`;
  const cases: Array<[string, Parameters<typeof send>[1], number]> = [
    ['malformed JSON', { body: '{"contactId": "c1",' }, 400],
    ['invalid UTF-8', { body: Buffer.concat([Buffer.from('{"contactId":"c1","phone":"+919876543210","name":"Ren'), Buffer.from([0xc3, 0x28]), Buffer.from('e"}')]) }, 400],
    ['a lone continuation byte in NDJSON', { body: Buffer.from([0x7b, 0x80, 0x7d, 0x0a]), headers: { 'content-type': 'application/x-ndjson' } }, 400],
    ['huge numbers', { body: JSON.stringify({ contactId: 1e308, phone: 9.99e307 }).replace('1e+308', '1e400') }, 400],
    ['a deeply nested body', { body: nested(200_000) }, 400],
    ['a deeply nested event', { body: `{"contactId":"c1","phone":"+919876543210","attributes":{"a":${nested(50_000)}}}` }, 400],
    ['a JSON string', { body: '"hello"' }, 400],
    ['null', { body: 'null' }, 400],
    ['an empty body', { body: '' }, 400],
    ['an empty array', { body: '[]' }, 400],
    ['XML', { body: '<contact id="c1"/>', headers: { 'content-type': 'application/xml' } }, 400],
    ['a form body', { body: 'contactId=c1&phone=%2B919876543210', headers: { 'content-type': 'application/x-www-form-urlencoded' } }, 400],
    ['__proto__ keys', { body: '{"__proto__":{"admin":true},"constructor":{"prototype":{"x":1}},"contactId":"c1"}' }, 400],
    ['an unsupported method', { method: 'DELETE' }, 405],
    ['PUT on events', { method: 'PUT', body: '{}' }, 405],
    ['an unknown route', { method: 'GET', path: '/v1/../../etc/passwd' }, 404],
    ['an unknown route with a long path', { method: 'GET', path: `/${'a'.repeat(4000)}` }, 404],
    ['bad percent-encoding in the path', { method: 'GET', path: '/v1/tenants/%E0%A4%A/contacts/c1' }, 400],
    ['an unknown tenant', { path: '/v1/tenants/nobody/events', body: '{}' }, 404],
    ['a replay without a target', { path: '/v1/dead-letters/replay', body: '{"tenant": 5}' }, 400],
    ['a replay with malformed JSON', { path: '/v1/dead-letters/replay', body: '{' }, 400],
  ];

  it.each(cases)('%s → a clear 4xx with a code', async (_what, opts, status) => {
    const d = await start();
    const a = await send(d.url, opts);
    expect(a.status).toBe(status);
    const body = JSON.parse(a.text) as { error?: { code: string; message: string }; rejected?: unknown[] };
    expect(body.error?.code ?? (body.rejected ? 'rejected' : undefined)).toMatch(/^(ERR_[A-Z_]+|rejected)$/);
    expectNoInternals(a);
    expect(a.text).not.toContain(TOKEN);
    // Still alive and serving.
    expect((await send(d.url, { method: 'GET', path: '/healthz' })).status).toBe(200);
  });

  it('a mangled request line or header gets Node\'s bare 400, and the daemon keeps serving', async () => {
    const d = await start();
    const net = await import('node:net');
    const u = new URL(d.url);
    const raw = await new Promise<string>((resolve) => {
      const s = net.connect(Number(u.port), u.hostname, () => s.end('POST /v1/events HTTP/1.1\r\nHost: x\r\nContent-Length: abc\r\n\r\n'));
      let out = '';
      s.on('data', (c) => { out += c.toString(); });
      s.on('close', () => resolve(out));
    });
    expect(raw).toMatch(/^HTTP\/1\.1 400/);
    expect(raw).not.toMatch(/\n\s+at |\/work\//);
    expect((await send(d.url, { method: 'GET', path: '/healthz' })).status).toBe(200);
  });
});
