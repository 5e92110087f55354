/** Shared by the security suites: mappings written as the customer would, small hostile servers, and a failure catcher. */
import http from 'node:http';
import type { AddressInfo, Socket } from 'node:net';
import { mkdtempSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { compileMapping, toContact, type CompiledMapping, type Contact } from '@crm-sync/core';
import { registerBuiltinAdapters } from '@crm-sync/runner';
import { main } from '@crm-sync/cli';

registerBuiltinAdapters();

/** The seed contract's endpoints with the given changes: a mapping file a customer could hand over. */
export function mappingText(overrides: Record<string, unknown> = {}, secretEnv = 'SECURITY_TEST_CRM_KEY'): string {
  return JSON.stringify({
    name: 'security-test',
    baseUrl: 'http://127.0.0.1',
    auth: { adapter: 'auth-key', header: 'Auth-Key', secret: `env:${secretEnv}` },
    flow: 'fetch-create-update',
    payload: '{ "phone": contact.phone, "name": contact.name, "email": contact.email, "custom_fields": contact.attributes }',
    endpoints: {
      fetch: { method: 'GET', url: '/crm/fetch', query: { phone: '{{contact.phone}}' } },
      create: { method: 'POST', url: '/crm/create' },
      update: { method: 'POST', url: '/crm/update/{{leadId}}' },
    },
    responses: { notFound: 'status = 404 and body.status = "Not Found"', failed: 'status >= 400 or $contains($string(body.status), "Failed")' },
    ...overrides,
  });
}

export function compile(overrides: Record<string, unknown> = {}, secretEnv?: string): CompiledMapping {
  return compileMapping(mappingText(overrides, secretEnv), { file: 'security-test.json' });
}

/** Writes a mapping file into a fresh temp dir (for the daemon and the CLI). */
export function mappingFile(overrides: Record<string, unknown> = {}, secretEnv?: string): string {
  const file = join(mkdtempSync(join(tmpdir(), 'crm-sync-security-')), 'mapping.json');
  writeFileSync(file, mappingText(overrides, secretEnv));
  return file;
}

export function contact(over: Record<string, unknown> = {}): Contact {
  return toContact({ tenant: 'acme', contactId: 'c1', phone: '+919876543210', name: 'Priya Sharma', email: 'priya@example.com', ...over });
}

/** Resolves with the rejection (fails the test if the promise resolves). */
export const failure = (p: Promise<unknown>): Promise<any> => p.then((v) => { throw new Error(`expected a failure, got ${JSON.stringify(v)}`); }, (err: unknown) => err);

export interface TinyServer {
  url: string;
  port: number;
  /** Request lines seen, e.g. `GET /x`. */
  seen: string[];
  /** TCP connections accepted. */
  connections(): number;
  close(): Promise<void>;
}

/** An HTTP server on 127.0.0.1 whose every answer is `handle`'s: a CRM behaving badly, or an attacker. */
export async function tinyServer(handle: http.RequestListener): Promise<TinyServer> {
  const seen: string[] = [];
  const sockets = new Set<Socket>();
  let connections = 0;
  const server = http.createServer((req, res) => { seen.push(`${req.method} ${req.url}`); handle(req, res); });
  server.on('connection', (s) => { connections++; sockets.add(s); s.on('close', () => sockets.delete(s)); });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const port = (server.address() as AddressInfo).port;
  return {
    url: `http://127.0.0.1:${port}`,
    port,
    seen,
    connections: () => connections,
    close: () => {
      for (const s of sockets) s.destroy();
      return new Promise((resolve) => server.close(() => resolve()));
    },
  };
}

/** Every way a secret could be written down, plus its distinctive start (a secret cut in half is a leak too). */
export function spellings(secret: string): string[] {
  return [...new Set([
    secret, encodeURIComponent(secret), new URLSearchParams({ s: secret }).toString().slice(2), JSON.stringify(secret).slice(1, -1),
    Buffer.from(secret).toString('base64'), Buffer.from(secret).toString('base64url'), secret.slice(0, 6),
  ])];
}

/**
 * What a secrets test observed (CLI output, logs, HTTP answers, database files), by where it came from, and the
 * search of all of it for every spelling of the secrets `secrets()` names at the time of the search.
 */
export function secretSweep(secrets: () => readonly string[]) {
  const seen: Array<{ where: string; data: string | Buffer }> = [];
  const record = (where: string, data: string | Buffer): void => { seen.push({ where, data }); };
  return {
    record,
    /** Runs a crm-sync command in-process; its stdout and stderr are recorded. Resolves to its exit code. */
    async cli(...argv: string[]): Promise<number> {
      const out: string[] = [];
      const err: string[] = [];
      const code = await main(argv, { out: (t) => out.push(t), err: (t) => err.push(t), readStdin: async () => '' });
      record(`crm-sync ${argv.join(' ')} (stdout)`, out.join('\n'));
      record(`crm-sync ${argv.join(' ')} (stderr)`, err.join('\n'));
      return code;
    },
    /** One line per leak: where, which spelling, and the text around it. */
    leaks(): string[] {
      const needles = [...new Set(secrets().flatMap(spellings))];
      const found: string[] = [];
      for (const { where, data } of seen) {
        const buf = typeof data === 'string' ? Buffer.from(data) : data;
        for (const n of needles) {
          const at = buf.indexOf(Buffer.from(n));
          if (at >= 0) found.push(`${where}: contains ${JSON.stringify(n)} in …${buf.subarray(Math.max(0, at - 60), at + 40).toString('utf8')}…`);
        }
      }
      return found;
    },
  };
}
