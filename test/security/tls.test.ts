/**
 * TLS: certificates are always verified, even for allow-listed hosts and whatever NODE_TLS_REJECT_UNAUTHORIZED says;
 * plain http is only for allow-listed hosts. A self-signed HTTPS "CRM" on 127.0.0.1 stands in for a man in the middle.
 */
import { execFileSync } from 'node:child_process';
import { existsSync, mkdtempSync, readFileSync, rmSync } from 'node:fs';
import https from 'node:https';
import type { AddressInfo, Socket } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { GotHttpClient, SyncEngine, type HttpRequest } from '@crm-sync/core';
import { compile, contact, failure } from './support';

process.env.SECURITY_TEST_CRM_KEY = 'tls-test-key';
const OPENSSL = '/usr/bin/openssl';

let dir: string;
let server: https.Server;
let url: string;
let requests = 0;
let handshakes = 0;
const sockets = new Set<Socket>();

beforeAll(async () => {
  if (!existsSync(OPENSSL)) throw new Error(`${OPENSSL} is missing: scripts/setup.sh installs it`);
  dir = mkdtempSync(join(tmpdir(), 'crm-sync-tls-'));
  execFileSync(OPENSSL, ['req', '-x509', '-newkey', 'rsa:2048', '-nodes', '-days', '1', '-subj', '/CN=127.0.0.1',
    '-addext', 'subjectAltName=IP:127.0.0.1,DNS:localhost', '-keyout', join(dir, 'key.pem'), '-out', join(dir, 'cert.pem')], { stdio: 'ignore' });
  server = https.createServer({ key: readFileSync(join(dir, 'key.pem')), cert: readFileSync(join(dir, 'cert.pem')) }, (_req, res) => {
    requests++;
    res.writeHead(200, { 'content-type': 'application/json' });
    res.end('{"lead_id":"L-mitm"}');
  });
  server.on('secureConnection', () => { handshakes++; });
  server.on('connection', (s: Socket) => { sockets.add(s); s.on('close', () => sockets.delete(s)); });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  url = `https://127.0.0.1:${(server.address() as AddressInfo).port}`;
});

afterAll(async () => {
  for (const s of sockets) s.destroy();
  await new Promise((resolve) => server.close(resolve));
  rmSync(dir, { recursive: true, force: true });
});

const request = (to: string): HttpRequest => ({ method: 'GET', url: to, headers: {}, timeoutMs: 3000, maxResponseBytes: 65536 });

describe('certificate verification', () => {
  it('a self-signed certificate is refused with ERR_TLS even though the host is allow-listed; no request is sent', async () => {
    const client = new GotHttpClient({ allowHosts: ['127.0.0.1'] });
    const err = await failure(client.send(request(`${url}/crm/fetch`)));
    client.close();
    expect(err).toMatchObject({ code: 'ERR_TLS', message: expect.stringMatching(/TLS certificate of 127\.0\.0\.1:\d+ was not accepted: .*self[- ]signed.*\(DEPTH_ZERO_SELF_SIGNED_CERT\)/) });
    expect(requests).toBe(0);
  });

  it('NODE_TLS_REJECT_UNAUTHORIZED=0 in the environment does not turn verification off', async () => {
    const before = process.env.NODE_TLS_REJECT_UNAUTHORIZED;
    process.env.NODE_TLS_REJECT_UNAUTHORIZED = '0';
    const client = new GotHttpClient({ allowHosts: ['127.0.0.1'] });
    try {
      expect(await failure(client.send(request(`${url}/crm/fetch`)))).toMatchObject({ code: 'ERR_TLS' });
    } finally {
      client.close();
      if (before === undefined) delete process.env.NODE_TLS_REJECT_UNAUTHORIZED; else process.env.NODE_TLS_REJECT_UNAUTHORIZED = before;
    }
    expect(requests).toBe(0);
  });

  it('through the engine: the sync fails at its first call with the TLS reason; nothing reached the impostor', async () => {
    const client = new GotHttpClient({ allowHosts: ['127.0.0.1'] });
    const err = await failure(new SyncEngine({ http: client }).sync(compile(), contact(), { baseUrl: url }));
    client.close();
    expect(err).toMatchObject({ code: 'ERR_TLS', context: expect.objectContaining({ step: 'fetch', contactId: 'c1' }) });
    expect(err.describe()).toContain('DEPTH_ZERO_SELF_SIGNED_CERT');
    expect(requests).toBe(0);
    expect(handshakes).toBe(0);
  });
});

describe('plain http', () => {
  it('is refused for a host not on the allow-list, before connecting', async () => {
    const client = new GotHttpClient({ allowHosts: ['127.0.0.1'], resolveHost: async () => { throw new Error('never resolved'); } });
    for (const to of ['http://crm.example.com/crm/fetch', 'http://localhost:1/', 'http://[::1]:1/']) {
      expect(await failure(client.send(request(to)))).toMatchObject({ code: 'ERR_URL_FORBIDDEN', message: expect.stringContaining('is not https') });
    }
    client.close();
  });

  it('https is required of every host not allowed (the same check runs on each redirect target, see ssrf.test.ts)', async () => {
    const client = new GotHttpClient({ allowHosts: [] });
    expect(() => client.checkUrl(new URL('http://crm.example.com/'))).toThrow(expect.objectContaining({ code: 'ERR_URL_FORBIDDEN' }));
    expect(() => client.checkUrl(new URL('https://crm.example.com/'))).not.toThrow();
    client.close();
  });
});
