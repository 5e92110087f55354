import http from 'node:http';
import type { AddressInfo } from 'node:net';
import { GotHttpClient, isPrivateAddress, NetworkPolicyError, PermanentError, RetryableError, type HttpRequest } from '../index';

/** A tiny server with one behaviour per path: what a CRM (or an attacker's redirect) might do. */
let server: http.Server;
let port: number;
const sockets = new Set<import('node:net').Socket>();
const client = new GotHttpClient({ allowHosts: ['127.0.0.1'] });

beforeAll(async () => {
  server = http.createServer((req, res) => {
    switch (req.url) {
      case '/echo': {
        const chunks: Buffer[] = [];
        req.on('data', (c: Buffer) => chunks.push(c));
        req.on('end', () => {
          res.writeHead(201, { 'content-type': 'application/json', 'X-Custom': 'yes' });
          res.end(JSON.stringify({ method: req.method, body: Buffer.concat(chunks).toString('utf8'), auth: req.headers['auth-key'] }));
        });
        return;
      }
      case '/to-other-host': res.writeHead(302, { location: `http://localhost:${port}/echo` }); return void res.end();
      case '/to-same-host': res.writeHead(302, { location: '/echo' }); return void res.end();
      case '/huge': res.writeHead(200, { 'content-type': 'text/plain' }); return void res.end(Buffer.alloc(64 * 1024, 97));
      case '/huge-chunked':
        res.writeHead(200, { 'content-type': 'text/plain' });
        res.write(Buffer.alloc(3000, 97));
        setTimeout(() => res.end(Buffer.alloc(3000, 97)), 5);
        return;
      case '/hang': return; // never answers
      case '/reset': return void req.socket.destroy();
      default: res.writeHead(404); res.end();
    }
  });
  server.on('connection', (s) => { sockets.add(s); s.on('close', () => sockets.delete(s)); });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  port = (server.address() as AddressInfo).port;
});

afterAll(async () => {
  client.close();
  for (const s of sockets) s.destroy();
  await new Promise((resolve) => server.close(resolve));
});

function request(url: string, extra: Partial<HttpRequest> = {}): HttpRequest {
  return { method: 'GET', url, headers: {}, timeoutMs: 2000, maxResponseBytes: 4096, ...extra };
}

const local = (path: string) => `http://127.0.0.1:${port}${path}`;
const failure = (p: Promise<unknown>) => p.then(() => { throw new Error('expected a failure'); }, (err: unknown) => err);

describe('GotHttpClient', () => {
  it('sends method, headers and body to an allowed loopback host and reads any status', async () => {
    const res = await client.send(request(local('/echo'), { method: 'POST', headers: { 'Auth-Key': 'k' }, body: 'a=1' }));
    expect(res.status).toBe(201);
    expect(res.headers['x-custom']).toBe('yes');
    expect(JSON.parse(res.body)).toEqual({ method: 'POST', body: 'a=1', auth: 'k' });
    expect((await client.send(request(local('/nope')))).status).toBe(404);
  });

  it('refuses plain http to a host not on the allow-list, before connecting', async () => {
    const err = await failure(new GotHttpClient().send(request(local('/echo'))));
    expect(err).toBeInstanceOf(NetworkPolicyError);
    expect(err).toMatchObject({ code: 'ERR_URL_FORBIDDEN', retryable: false });
  });

  it.each(['https://10.0.0.1/x', 'https://169.254.169.254/latest/meta-data', 'https://[::1]/x', 'https://[::ffff:127.0.0.1]/x', 'https://192.168.1.1/x'])(
    'refuses the private IP literal in %s', async (url) => {
      expect(await failure(new GotHttpClient().send(request(url)))).toMatchObject({ code: 'ERR_URL_FORBIDDEN' });
    });

  it('refuses a name that resolves to a private address unless it is allowed', async () => {
    const url = `https://localhost:${port}/echo`;
    expect(await failure(new GotHttpClient().send(request(url)))).toMatchObject({ code: 'ERR_URL_FORBIDDEN', message: expect.stringContaining('private address') });
    const allowed = new GotHttpClient({ allowHosts: ['localhost'] });
    try {
      expect((await allowed.send(request(`http://localhost:${port}/echo`))).status).toBe(201);
    } finally { allowed.close(); }
  });

  it('a new allow-list applies from the next request on, both ways', async () => {
    const c = new GotHttpClient();
    try {
      const url = `http://localhost:${port}/echo`;
      expect(await failure(c.send(request(url)))).toMatchObject({ code: 'ERR_URL_FORBIDDEN' });
      c.setAllowHosts(['localhost']);
      expect((await c.send(request(url))).status).toBe(201);
      c.setAllowHosts([]);
      expect(await failure(c.send(request(url)))).toMatchObject({ code: 'ERR_URL_FORBIDDEN' });
    } finally { c.close(); }
  });

  it('classifies addresses', () => {
    for (const a of ['127.0.0.1', '10.1.2.3', '172.16.0.1', '192.168.0.1', '169.254.169.254', '100.64.0.1', '::1', 'fe80::1', 'fd00::1', '::ffff:10.0.0.1', 'not-an-ip']) {
      expect([a, isPrivateAddress(a)]).toEqual([a, true]);
    }
    for (const a of ['8.8.8.8', '1.1.1.1', '2606:4700::1111', '::ffff:8.8.8.8']) expect([a, isPrivateAddress(a)]).toEqual([a, false]);
  });

  it('follows a redirect on the same host and refuses one to another host', async () => {
    expect((await client.send(request(local('/to-same-host')))).status).toBe(201);
    expect(await failure(client.send(request(local('/to-other-host'))))).toMatchObject({ code: 'ERR_URL_FORBIDDEN', message: expect.stringContaining('another host') });
  });

  it.each(['/huge', '/huge-chunked'])('caps the response size (%s)', async (path) => {
    const err = await failure(client.send(request(local(path))));
    expect(err).toBeInstanceOf(PermanentError);
    expect(err).toMatchObject({ code: 'ERR_RESPONSE_TOO_LARGE' });
  });

  it('times a hung request out as a retryable ERR_TIMEOUT', async () => {
    const started = Date.now();
    const err = await failure(client.send(request(local('/hang'), { timeoutMs: 150 })));
    expect(err).toBeInstanceOf(RetryableError);
    expect(err).toMatchObject({ code: 'ERR_TIMEOUT' });
    expect(Date.now() - started).toBeLessThan(1500);
  });

  it('reports a connection reset as a retryable network error', async () => {
    expect(await failure(client.send(request(local('/reset'))))).toMatchObject({ code: 'ERR_NETWORK', retryable: true });
  });
});
