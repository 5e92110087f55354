/**
 * Secrets never leave, with OAuth (the bearer adapter's `oauth` option): a refresh token, a client secret and the
 * access tokens a token endpoint issues, against token endpoints and CRMs that echo everything they receive in their
 * failures. The CLI (validate, preview, sync, verify) and the daemon at trace level are run through every failure,
 * and everything observable is searched for every spelling of every one of those secrets.
 */
import { existsSync, readdirSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { Writable } from 'node:stream';
import { createLogger, resolveConfig, startDaemon, type Daemon } from '@crm-sync/runner';
import { mappingFile, secretSweep, tinyServer, type TinyServer } from './support';

// Characters that every encoding spells differently: + / = & ~ and a quote.
const REFRESH_TOKEN = 'rfTOK+5/e=&Qa~4"XYZ';
const CLIENT_SECRET = 'clSEC+8/r=&Wd~1JKL';
const INGEST_TOKEN = 'oaING+2/k=&Pl~7MNB';
process.env.OAUTH_SECRETS_REFRESH = REFRESH_TOKEN;
process.env.OAUTH_SECRETS_CLIENT = CLIENT_SECRET;
process.env.OAUTH_SECRETS_INGEST = INGEST_TOKEN;

/** Access tokens the token endpoint issued: secrets as much as the others. */
const issued: string[] = [];

const { record, leaks, cli } = secretSweep(() => [REFRESH_TOKEN, CLIENT_SECRET, INGEST_TOKEN, ...issued]);


function bodyOf(req: import('node:http').IncomingMessage): Promise<string> {
  return new Promise((resolve) => {
    const chunks: Buffer[] = [];
    req.on('data', (c: Buffer) => chunks.push(c));
    req.on('end', () => resolve(Buffer.concat(chunks).toString('utf8')));
  });
}

/**
 * A token endpoint; the mode is the first path segment. `ok` issues access tokens (distinctive, like the secrets);
 * `refuse` answers invalid_grant echoing the request (refresh token and client secret, form-encoded) in its
 * description; `down` answers 503 with the same echo.
 */
async function tokenEndpoint(): Promise<TinyServer> {
  return tinyServer(async (req, res) => {
    const body = await bodyOf(req);
    const mode = req.url!.split('/')[1];
    const echo = `${body} ${JSON.stringify(req.headers)} ${REFRESH_TOKEN} ${CLIENT_SECRET}`;
    res.setHeader('content-type', 'application/json');
    if (mode === 'ok') {
      const token = `acTOK+${issued.length}/t=&Nm~"UVW`;
      issued.push(token);
      return void res.end(JSON.stringify({ access_token: token, expires_in: 3600, token_type: 'Bearer' }));
    }
    res.statusCode = mode === 'down' ? 503 : 400;
    res.end(JSON.stringify({ error: mode === 'down' ? 'temporarily_unavailable' : 'invalid_grant', error_description: echo }));
  });
}

/** A CRM that refuses every request (401 or 400), echoing what it got: the access token in its Authorization header. */
async function echoingCrm(): Promise<TinyServer> {
  return tinyServer(async (req, res) => {
    const body = await bodyOf(req);
    const mode = req.url!.split('/')[1];
    const echo = `${'x'.repeat(280)}${JSON.stringify(req.headers)} ${req.url} ${body}`;
    res.writeHead(mode === 'unauth' ? 401 : 400, { 'content-type': 'application/json', 'x-echo': encodeURIComponent(String(req.headers.authorization)) });
    res.end(JSON.stringify({ status: 'Creation Failed', reason: echo, auth: req.headers.authorization }));
  });
}

let tokens: TinyServer;
let crm: TinyServer;
const mappings: Record<string, string> = {};

beforeAll(async () => {
  tokens = await tokenEndpoint();
  crm = await echoingCrm();
  for (const mode of ['ok', 'refuse', 'down']) {
    mappings[mode] = mappingFile({
      timeoutMs: 300,
      auth: { adapter: 'bearer', secret: 'env:OAUTH_SECRETS_REFRESH', oauth: { tokenUrl: `${tokens.url}/${mode}/token`, clientId: 'client-1', clientSecret: 'env:OAUTH_SECRETS_CLIENT' } },
    });
  }
});
afterAll(async () => {
  await tokens.close();
  await crm.close();
});

test('CLI: validate, preview, sync and verify through every failure', async () => {
  const contactFile = mappings.ok!.replace(/mapping\.json$/, 'contact.json');
  require('node:fs').writeFileSync(contactFile, JSON.stringify({ contactId: 'c1', phone: '+919876543210', name: 'Priya', email: 'p@example.com' }));
  for (const m of Object.values(mappings)) {
    expect(await cli('validate', m)).toBe(0);
    expect(await cli('preview', m, '--contact', contactFile)).toBe(0);
    for (const mode of ['unauth', 'reject']) {
      expect(await cli('sync', m, '--contact', contactFile, '--base-url', `${crm.url}/${mode}`)).toBe(1);
      expect(await cli('verify', m, '--base-url', `${crm.url}/${mode}`)).toBe(1);
    }
  }
  // Tokens were issued and sent (so there was something to leak): a new one at every 401 (the cache is per process).
  expect(issued.length).toBeGreaterThanOrEqual(3);
  expect(leaks()).toEqual([]);
});

test('the daemon at trace level: logs, answers, metrics, history, dead letters and the database files', async () => {
  const dataDir = join(tmpdir(), `crm-sync-oauth-secrets-${process.pid}-${Date.now()}`);
  const tenants: Record<string, unknown> = {};
  for (const [mode, mapping] of Object.entries(mappings)) {
    for (const crmMode of ['unauth', 'reject']) tenants[`${mode}-${crmMode}`] = { mapping, baseUrl: `${crm.url}/${crmMode}`, quiet: '50ms', maxWait: '200ms' };
  }
  const config = resolveConfig({
    listen: '127.0.0.1:0', dataDir, allowHosts: ['127.0.0.1'], ingestToken: 'env:OAUTH_SECRETS_INGEST', logLevel: 'trace',
    retry: { base: '20ms', max: '50ms', budget: '300ms' }, tenants,
  }, { name: 'oauth secrets test', baseDir: dataDir, labels: {} }, {});
  const logLines: string[] = [];
  const destination = new Writable({ write(chunk, _enc, done) { logLines.push(chunk.toString()); done(); } });
  const daemon: Daemon = await startDaemon(config, { logger: createLogger({ level: 'trace', destination }) });
  const auth = { authorization: `Bearer ${INGEST_TOKEN}` };
  const http = async (path: string, init: RequestInit = {}) => {
    const res = await fetch(`${daemon.url}${path}`, init);
    const text = await res.text();
    record(`${init.method ?? 'GET'} ${path} → ${res.status}`, `${JSON.stringify([...res.headers])} ${text}`);
    return text;
  };
  try {
    for (const t of Object.keys(tenants)) {
      await http(`/v1/tenants/${t}/events`, { method: 'POST', headers: { ...auth, 'content-type': 'application/json' }, body: JSON.stringify([{ contactId: 'c1', phone: '+919876543210', name: 'Priya' }]) });
    }
    await daemon.runner.whenIdle();
    await http('/metrics');
    await http('/v1/status', { headers: auth });
    for (const t of Object.keys(tenants)) await http(`/v1/tenants/${t}/contacts/c1`, { headers: auth });
    const dead = JSON.parse(await http('/v1/dead-letters', { headers: auth })) as { deadLetters: Array<{ tenant: string; error: { code: string; message: string } }> };
    // Anything the engine did not classify would be a bug: shown whole if it happens.
    expect(dead.deadLetters.filter((d) => d.error.code === 'ERR_INTERNAL')).toEqual([]);
    // The failures really happened: refused grants and 401s (auth), an unavailable token endpoint, rejections.
    expect(new Set(dead.deadLetters.map((d) => d.error.code))).toEqual(new Set(['ERR_CRM_AUTH', 'ERR_CRM_UNAVAILABLE', 'ERR_CRM_REJECTED']));
    expect(await cli('dead-letters', 'list', '--json', '--url', daemon.url, '--token-env', 'OAUTH_SECRETS_INGEST')).toBe(0);
    const files = () => readdirSync(dataDir).filter((f) => f.startsWith('crm-sync.db'));
    for (const f of files()) record(`${f} (running)`, readFileSync(join(dataDir, f)));
  } finally {
    await daemon.stop();
  }
  for (const f of readdirSync(dataDir)) if (existsSync(join(dataDir, f))) record(`${f} (stopped)`, readFileSync(join(dataDir, f)));
  record('daemon log', logLines.join(''));
  rmSync(dataDir, { recursive: true, force: true });
  expect(logLines.length).toBeGreaterThan(20);
  expect(leaks()).toEqual([]);
});
