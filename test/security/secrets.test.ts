/**
 * Secrets never leave: distinctive values for the CRM key and the ingest token, every command and failure path run
 * (including a CRM that echoes the secret back in its answers), and everything observable searched for any spelling
 * of either secret: CLI output, daemon logs at debug level, every HTTP answer, metrics, history, dead letters, and
 * the bytes of the SQLite database and its WAL.
 */
import { existsSync, readFileSync, readdirSync } from 'node:fs';
import { join } from 'node:path';
import { Writable } from 'node:stream';
import { createLogger, resolveConfig, startDaemon, type Daemon } from '@crm-sync/runner';
import { startReferenceCrm, type ReferenceCrm } from '@crm-sync/testkit';
import { mappingFile, secretSweep, tinyServer, type TinyServer } from './support';

// Characters that every encoding spells differently: + / = & ~ and a quote.
const CRM_KEY = 'crmKEY+7/q=&Zx~9"PLM';
const INGEST_TOKEN = 'ingTOK+3/w=&Vb~2QRS';
process.env.SECRETS_TEST_CRM_KEY = CRM_KEY;
process.env.SECRETS_TEST_INGEST_TOKEN = INGEST_TOKEN;

// Basic auth sends base64("api:<key>"), which decodes back to the key: it is looked for as well.
const BASIC = Buffer.from(`api:${CRM_KEY}`, 'utf8').toString('base64');
const { record, leaks, cli } = secretSweep(() => [CRM_KEY, INGEST_TOKEN, BASIC]);


/**
 * A CRM that answers every request with a failure echoing what it received (headers, query, body) and its own key,
 * raw and encoded, the key placed to straddle the engine's 300-character excerpt. The mode is the first path segment.
 */
async function echoingCrm(): Promise<TinyServer> {
  return tinyServer((req, res) => {
    const chunks: Buffer[] = [];
    req.on('data', (c: Buffer) => chunks.push(c));
    req.on('end', () => {
      const mode = req.url!.split('/')[1];
      const echo = `${'x'.repeat(294)}${CRM_KEY} ${encodeURIComponent(CRM_KEY)} ${JSON.stringify(req.headers)} ${req.url} ${Buffer.concat(chunks).toString('utf8')}`;
      if (mode === 'hang') return;
      if (mode === 'reset') return void req.socket.destroy();
      if (mode === 'failbody' && req.url!.includes('/crm/fetch')) {
        res.writeHead(404, { 'content-type': 'application/json' });
        return void res.end(JSON.stringify({ status: 'Not Found', reason: echo }));
      }
      const status = mode === 'unauth' ? 401 : mode === 'fail500' ? 500 : mode === 'failbody' ? 200 : 400;
      res.writeHead(status, { 'content-type': 'application/json', 'x-echo-key': encodeURIComponent(CRM_KEY), 'retry-after': '0' });
      res.end(JSON.stringify({ status: 'Creation Failed', reason: echo, detail: { key: CRM_KEY, auth: req.headers['auth-key'] } }));
    });
  });
}

const MODES = ['unauth', 'fail500', 'failbody', 'hang', 'reset', 'reject'] as const;

let crm: ReferenceCrm;
let echo: TinyServer;
let authKeyMapping: string;
let bodySecretMapping: string;
let querySecretMapping: string;
let basicMapping: string;

beforeAll(async () => {
  crm = await startReferenceCrm({ auth: { style: 'auth-key', key: CRM_KEY } });
  echo = await echoingCrm();
  authKeyMapping = mappingFile({ timeoutMs: 300 }, 'SECRETS_TEST_CRM_KEY');
  bodySecretMapping = mappingFile({ timeoutMs: 300, auth: { adapter: 'body-secret', field: 'api_key', secret: 'env:SECRETS_TEST_CRM_KEY' } });
  querySecretMapping = mappingFile({ timeoutMs: 300, encoding: 'form', auth: { adapter: 'body-secret', field: 'api_key', in: 'query', secret: 'env:SECRETS_TEST_CRM_KEY' } });
  basicMapping = mappingFile({ timeoutMs: 300, auth: { adapter: 'basic', username: 'api', secret: 'env:SECRETS_TEST_CRM_KEY' } });
});
afterAll(async () => {
  await crm.close();
  await echo.close();
});

describe('no secret in any output', () => {
  test('CLI: validate, preview, sync (success and every failure), verify', async () => {
    const contactFile = mappingFile().replace(/mapping\.json$/, 'contact.json');
    require('node:fs').writeFileSync(contactFile, JSON.stringify({ contactId: 'c1', phone: '+919876543210', name: 'Priya', email: 'p@example.com' }));
    for (const m of [authKeyMapping, bodySecretMapping, querySecretMapping, basicMapping]) {
      expect(await cli('validate', m)).toBe(0);
      expect(await cli('preview', m, '--contact', contactFile)).toBe(0);
    }
    // A literal secret in a mapping is refused without repeating it.
    const literal = mappingFile({ auth: { adapter: 'auth-key', header: 'Auth-Key', secret: CRM_KEY } });
    expect(await cli('validate', literal)).toBe(1);

    expect(await cli('sync', authKeyMapping, '--contact', contactFile, '--base-url', crm.url)).toBe(0);
    expect(await cli('verify', authKeyMapping, '--base-url', crm.url)).toBe(0);
    for (const m of [authKeyMapping, bodySecretMapping, querySecretMapping, basicMapping]) {
      for (const mode of MODES) {
        expect([mode, await cli('sync', m, '--contact', contactFile, '--base-url', `${echo.url}/${mode}`)]).toEqual([mode, 1]);
      }
      expect(await cli('verify', m, '--base-url', `${echo.url}/failbody`)).toBe(1);
    }
    expect(leaks()).toEqual([]);
  });

  describe('the daemon', () => {
    let daemon: Daemon;
    let dataDir: string;
    const logLines: string[] = [];
    const auth = { authorization: `Bearer ${INGEST_TOKEN}` };

    beforeAll(async () => {
      dataDir = join(require('node:os').tmpdir(), `crm-sync-secrets-${process.pid}-${Date.now()}`);
      const tenants: Record<string, unknown> = { ok: { mapping: authKeyMapping, baseUrl: crm.url, quiet: '50ms', maxWait: '200ms' } };
      for (const [i, m] of [authKeyMapping, bodySecretMapping, querySecretMapping, basicMapping].entries()) {
        for (const mode of MODES) tenants[`${mode}-${i}`] = { mapping: m, baseUrl: `${echo.url}/${mode}`, quiet: '50ms', maxWait: '200ms' };
      }
      const config = resolveConfig({
        listen: '127.0.0.1:0', dataDir, allowHosts: ['127.0.0.1'], ingestToken: 'env:SECRETS_TEST_INGEST_TOKEN', logLevel: 'trace',
        retry: { base: '20ms', max: '50ms', budget: '300ms' }, tenants,
      }, { name: 'secrets test', baseDir: dataDir, labels: {} }, {});
      const destination = new Writable({ write(chunk, _enc, done) { logLines.push(chunk.toString()); done(); } });
      daemon = await startDaemon(config, { logger: createLogger({ level: 'trace', destination }) });
      record('resolved config (as a program would print it)', JSON.stringify({ ...config, ingestToken: config.ingestToken ? '***' : undefined }));
    });
    afterAll(async () => {
      await daemon.stop();
      require('node:fs').rmSync(dataDir, { recursive: true, force: true });
    });

    const http = async (path: string, init: RequestInit = {}) => {
      const res = await fetch(`${daemon.url}${path}`, init);
      const text = await res.text();
      record(`${init.method ?? 'GET'} ${path} → ${res.status} (headers)`, JSON.stringify([...res.headers]));
      record(`${init.method ?? 'GET'} ${path} → ${res.status}`, text);
      return { status: res.status, text };
    };
    const post = (path: string, body: unknown, headers: Record<string, string> = auth) =>
      http(path, { method: 'POST', headers: { 'content-type': 'application/json', ...headers }, body: JSON.stringify(body) });

    test('logs at trace level, every answer, metrics, history, dead letters, the CLI against it, and the database files', async () => {
      const tenants = ['ok', ...[0, 1, 2, 3].flatMap((i) => MODES.map((m) => `${m}-${i}`))];
      for (const t of tenants) {
        const r = await post(`/v1/tenants/${t}/events`, [{ eventId: `${t}-1`, contactId: 'c1', phone: '+919876543210', name: 'Priya', email: 'p@example.com' }]);
        expect([t, r.status]).toEqual([t, 202]);
      }
      // Error answers: wrong tokens (including one that differs from the real token by a character), bad bodies.
      await post('/v1/events', {}, { authorization: `Bearer ${INGEST_TOKEN.slice(0, -1)}X` });
      await post('/v1/events', {}, { authorization: `Bearer ${INGEST_TOKEN}${INGEST_TOKEN}` });
      await http('/v1/status', { headers: { authorization: `Basic ${Buffer.from(`u:${INGEST_TOKEN}`).toString('base64')}` } });
      await http('/v1/events', { method: 'POST', headers: { ...auth, 'content-type': 'application/json' }, body: `{"token": "${INGEST_TOKEN}",` });
      // A client that puts the token in the query string (as well as, or instead of, the header); an unknown path too.
      await http(`/v1/status?token=${encodeURIComponent(INGEST_TOKEN)}`, { headers: auth });
      await http(`/v1/status?access_token=${encodeURIComponent(INGEST_TOKEN)}`);
      await http(`/v1/nowhere?token=${encodeURIComponent(INGEST_TOKEN)}`, { headers: auth });
      await http(`/v1/status?${encodeURIComponent(INGEST_TOKEN)}`, { headers: auth });
      await daemon.runner.whenIdle();

      await http('/metrics');
      await http('/v1/status', { headers: auth });
      for (const t of tenants) await http(`/v1/tenants/${t}/contacts/c1`, { headers: auth });
      const dead = await http('/v1/dead-letters', { headers: auth });
      // The failures really happened (so there was something to leak).
      const codes = (JSON.parse(dead.text) as { deadLetters: Array<{ error: { code: string } }> }).deadLetters.map((d) => d.error.code);
      expect(new Set(codes)).toEqual(new Set(['ERR_CRM_AUTH', 'ERR_CRM_UNAVAILABLE', 'ERR_CRM_REJECTED', 'ERR_TIMEOUT', 'ERR_NETWORK']));
      await post('/v1/dead-letters/replay', { all: true });
      await daemon.runner.whenIdle();

      const cliEnv = ['--url', daemon.url, '--token-env', 'SECRETS_TEST_INGEST_TOKEN'];
      expect(await cli('dead-letters', 'list', ...cliEnv)).toBe(0);
      expect(await cli('dead-letters', 'list', '--json', ...cliEnv)).toBe(0);
      expect(await cli('status', ...cliEnv)).toBe(0);
      expect(await cli('status', 'failbody-0', 'c1', ...cliEnv)).toBe(0);
      expect(await cli('status', 'failbody-1', 'c1', '--json', ...cliEnv)).toBe(0);
      // A CLI given the wrong token reports the 401 without the token it sent.
      process.env.SECRETS_TEST_WRONG_TOKEN = `${INGEST_TOKEN}-wrong`;
      expect(await cli('status', '--url', daemon.url, '--token-env', 'SECRETS_TEST_WRONG_TOKEN')).toBe(1);

      // The database as it is on disk while running (WAL included), then after a clean stop.
      const files = () => readdirSync(dataDir).filter((f) => f.startsWith('crm-sync.db'));
      expect(files()).toEqual(expect.arrayContaining(['crm-sync.db', 'crm-sync.db-wal']));
      for (const f of files()) record(`${f} (running)`, readFileSync(join(dataDir, f)));
      await daemon.stop();
      for (const f of files()) if (existsSync(join(dataDir, f))) record(`${f} (stopped)`, readFileSync(join(dataDir, f)));
      record('daemon log', logLines.join(''));

      expect(logLines.length).toBeGreaterThan(50);
      expect(leaks()).toEqual([]);
    });
  });

  test('a config with the token written literally is refused without repeating it', () => {
    let message = '';
    try {
      resolveConfig({ ingestToken: INGEST_TOKEN, tenants: { a: { mapping: authKeyMapping } } }, { name: 'literal', baseDir: '/', labels: {} }, {});
    } catch (err) { message = `${(err as Error).message} ${JSON.stringify(err)}`; }
    expect(message).toContain('never the secret itself');
    record('config error', message);
    expect(leaks()).toEqual([]);
  });
});
