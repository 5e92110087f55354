/** Loading crm-sync.yaml and the run flags: every error names the field (or flag / env var) and the reason. */
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { configFromFlags, createLogger, loadConfigFile, misspeltEnv, prepareTenants, startDaemon, InvalidConfigError } from '@crm-sync/runner';
import { SEED_MAPPING, silentLogger } from './daemon.support';

let dir: string;
beforeEach(() => { dir = mkdtempSync(join(tmpdir(), 'crm-sync-config-')); });
afterEach(() => rmSync(dir, { recursive: true, force: true }));

function write(name: string, text: string): string {
  const file = join(dir, name);
  writeFileSync(file, text);
  return file;
}

function errorOf(fn: () => unknown): Error {
  try {
    fn();
  } catch (err) {
    return err as Error;
  }
  throw new Error('expected an error');
}

const tenant = (extra = '') => `tenants:\n  acme:\n    mapping: ${JSON.stringify(SEED_MAPPING)}\n${extra}`;

test('a full config: durations, paths relative to the file, defaults', () => {
  const file = write('crm-sync.yaml', [
    'listen: "[::1]:9090"', 'dataDir: state', 'allowHosts: [crm.internal]', 'retry: { base: 2s, budget: 4h }',
    tenant('    quiet: 300ms\n    maxWait: 1h\n    concurrency: 8\n    requestsPerSecond: 2.5\n    defaultCountry: IN\n'),
  ].join('\n'));
  const c = loadConfigFile(file, {});
  expect(c.listen).toEqual({ host: '::1', port: 9090 });
  expect(c.dataDir).toBe(join(dir, 'state'));
  expect(c.store).toEqual({ kind: 'sqlite', path: join(dir, 'state', 'crm-sync.db') });
  expect(c.retry).toEqual({ baseMs: 2000, maxMs: 3_600_000, budgetMs: 4 * 3_600_000 });
  expect(c.tenants).toEqual([{ name: 'acme', mappingFile: SEED_MAPPING, baseUrl: undefined, quietMs: 300, maxWaitMs: 3_600_000, concurrency: 8, requestsPerSecond: 2.5, defaultCountry: 'IN' }]);
  expect(c.maxBodyBytes).toBe(5 * 1024 * 1024);
  expect(c.ingestToken).toBeUndefined();
});

test('schema errors name every bad path and say what is expected', () => {
  const file = write('bad.yaml', [
    'listen: localhost', 'colour: blue', 'ingestToken: hunter2', 'store: postgres://db',
    'tenants:', '  acme:', '    mapping: m.yaml', '    quiet: 5 minutes', '    concurrency: 0', '    maxWiat: 1h', '  "bad name": { mapping: x.yaml }',
    'drian: 5s',
  ].join('\n'));
  const err = errorOf(() => loadConfigFile(file, {}));
  expect(err).toBeInstanceOf(InvalidConfigError);
  expect((err as InvalidConfigError).errors).toEqual(expect.arrayContaining([
    { field: 'listen', message: 'must be host:port, e.g. 127.0.0.1:8080 or [::1]:8080' },
    { field: 'colour', message: 'is not a known field' },
    { field: 'drian', message: 'is not a known field; did you mean drain?' },
    { field: 'tenants.acme.maxWiat', message: 'is not a known field; did you mean maxWait?' },
    { field: 'ingestToken', message: 'must be a secret reference env:NAME or file:PATH, never the secret itself' },
    { field: 'store', message: 'must be sqlite:<path> or redis://host:port' },
    { field: 'tenants.acme.quiet', message: 'must be a duration such as 300ms, 5m or 1h' },
    { field: 'tenants.acme.concurrency', message: 'must be >= 1' },
    { field: 'tenants.bad name', message: expect.stringContaining('must be a tenant name') },
  ]));
  expect(err.message).toMatch(new RegExp(`^${file}: `));
  expect(err.message).not.toContain('hunter2');
});

test('YAML syntax errors name the line; no tenants is an error; maxWait below quiet is an error', () => {
  expect(errorOf(() => loadConfigFile(write('a.yaml', 'tenants:\n  acme: { mapping: x\n'), {})).message).toMatch(/a\.yaml: line \d+: /);
  expect(errorOf(() => loadConfigFile(write('b.yaml', 'listen: 127.0.0.1:1\n'), {})).message).toContain('tenants: is required');
  expect(errorOf(() => loadConfigFile(write('c.yaml', tenant('    quiet: 10m\n    maxWait: 5m\n')), {})).message)
    .toContain('tenants.acme.maxWait: must be at least the quiet window (10m)');
});

test('a data directory or store that cannot be opened stops the start with the file and the reason', async () => {
  const file = write('not-a-dir', 'x');
  const flags = (over: Record<string, unknown>) => configFromFlags({ mapping: SEED_MAPPING, listen: '127.0.0.1:0', ...over }, {});
  await expect(startDaemon(flags({ data: join(file, 'sub') }), { logger: silentLogger() })).rejects.toMatchObject({
    code: 'ERR_STORE_OPEN', message: `store sqlite:${join(file, 'sub', 'crm-sync.db')}: cannot be opened: a part of the path is a file, not a directory (ENOTDIR); set another dataDir (CRM_SYNC_DATA_DIR, --data) or store`,
  });
  const notDb = write('bad.db', 'not a database '.repeat(100));
  await expect(startDaemon(flags({ store: `sqlite:${notDb}` }), { logger: silentLogger() })).rejects.toMatchObject({
    code: 'ERR_STORE_OPEN', message: expect.stringContaining(`store sqlite:${notDb}: cannot be opened: the file is not a SQLite database (SQLITE_NOTADB)`),
  });
});

test('a CRM_SYNC_ variable a typo away from one crm-sync reads is named at start-up with the one meant; other names are left alone', async () => {
  const env = { CRM_SYNC_INGEST_TOKN: 'x', CRM_SYNC_DATADIR: '/d', CRM_SYNC_ACME_CRM_KEY: 'k', CRM_SYNC_LISTEN: '127.0.0.1:1', PATH: '/bin' };
  expect(misspeltEnv(env)).toEqual([{ name: 'CRM_SYNC_DATADIR', meant: 'CRM_SYNC_DATA_DIR' }, { name: 'CRM_SYNC_INGEST_TOKN', meant: 'CRM_SYNC_INGEST_TOKEN' }]);
  const lines: string[] = [];
  const daemon = await startDaemon(configFromFlags({ mapping: SEED_MAPPING, listen: '127.0.0.1:0', data: dir }, {}),
    { env, logger: createLogger({ level: 'warn', destination: { write: (l: string) => { lines.push(l); } } }) });
  await daemon.stop();
  expect(lines.map((l) => JSON.parse(l)).filter((l) => l.variable)).toEqual([
    expect.objectContaining({ level: 'warn', variable: 'CRM_SYNC_DATADIR', meant: 'CRM_SYNC_DATA_DIR', msg: 'CRM_SYNC_DATADIR is set, and crm-sync reads no such variable: did you mean CRM_SYNC_DATA_DIR?' }),
    expect.objectContaining({ variable: 'CRM_SYNC_INGEST_TOKN', meant: 'CRM_SYNC_INGEST_TOKEN' }),
  ]);
});

test('a mapping whose golden examples fail is named in a warning at start-up; one whose examples pass is not', async () => {
  const drifted = write('drifted.yaml', readFileSync(SEED_MAPPING, 'utf8').replace('- { method: POST, url: /crm/update/L-77,', '- { method: POST, url: /crm/update/L-78,'));
  const start = async (mapping: string) => {
    const lines: string[] = [];
    const daemon = await startDaemon(configFromFlags({ mapping, listen: '127.0.0.1:0', data: dir }, {}),
      { env: {}, logger: createLogger({ level: 'warn', destination: { write: (l: string) => { lines.push(l); } } }) });
    await daemon.stop();
    return lines.map((l) => JSON.parse(l)).filter((l) => l.mapping);
  };
  expect(await start(drifted)).toEqual([expect.objectContaining({
    level: 'warn', tenants: ['default'], mapping: drifted, failed: ['examples[1] (fetch finds the lead → update it by the fetched id)'],
    first: expect.stringContaining('/crm/update/L-78'),
    msg: `1 of the 5 golden examples of ${drifted} fail: its requests are not the ones written down (crm-sync validate ${drifted} shows them)`,
  })]);
  expect(await start(SEED_MAPPING)).toEqual([]);
});

test('a lease under 1s, a zero first retry, and a retry.max below retry.base are refused by name', () => {
  // lease: 0s was taken, and one contact was synced again and again: each claim lapsed before its sync could settle.
  expect(errorOf(() => loadConfigFile(write('l.yaml', `lease: 0s\n${tenant()}`), {})).message).toContain('lease: must be at least 1s (a runner renews its claim every third of it), got 0s');
  expect(errorOf(() => loadConfigFile(write('m.yaml', `lease: 900ms\n${tenant()}`), {})).message).toContain('lease: must be at least 1s');
  expect(loadConfigFile(write('n.yaml', `lease: 1s\n${tenant()}`), {}).leaseMs).toBe(1000);
  expect(errorOf(() => loadConfigFile(write('r.yaml', `retry: { base: 2m, max: 1m }\n${tenant()}`), {})).message).toContain('retry.max: must be at least retry.base (2m)');
  expect(errorOf(() => loadConfigFile(write('z.yaml', `retry: { base: 0s }\n${tenant()}`), {})).message).toContain('retry.base: must be more than 0');
});

test('environment variables override the file, and errors name the variable', () => {
  process.env.CONFIG_TEST_TOKEN = 'from-file-ref';
  const file = write('crm-sync.yaml', `listen: 127.0.0.1:8080\ningestToken: env:CONFIG_TEST_TOKEN\n${tenant()}`);
  const c = loadConfigFile(file, {
    CRM_SYNC_LISTEN: '0.0.0.0:9000', CRM_SYNC_STORE: 'redis://:pw@redis:6379', CRM_SYNC_INGEST_TOKEN: 'from-env',
    CRM_SYNC_LOG_LEVEL: 'debug', CRM_SYNC_ALLOW_HOSTS: 'a.internal, b.internal',
  });
  expect(c).toMatchObject({ listen: { host: '0.0.0.0', port: 9000 }, store: { kind: 'redis', url: 'redis://:pw@redis:6379' }, ingestToken: 'from-env', logLevel: 'debug', allowHosts: ['a.internal', 'b.internal'] });
  expect(loadConfigFile(file, {}).ingestToken).toBe('from-file-ref');
  expect(errorOf(() => loadConfigFile(file, { CRM_SYNC_LISTEN: 'nowhere' })).message).toContain('CRM_SYNC_LISTEN: must be host:port');
  expect(errorOf(() => loadConfigFile(file, { CRM_SYNC_LOG_LEVEL: 'loud' })).message).toContain('CRM_SYNC_LOG_LEVEL: must be one of');
  delete process.env.CONFIG_TEST_TOKEN;
  expect(errorOf(() => loadConfigFile(file, {})).message).toContain('ingestToken: secret env:CONFIG_TEST_TOKEN: environment variable CONFIG_TEST_TOKEN is not set');
});

test('a redis store parses (password kept out of messages); an unreachable one stops the start with the reason', async () => {
  const c = loadConfigFile(write('crm-sync.yaml', `store: redis://:hunter2@127.0.0.1:1\nlisten: 127.0.0.1:0\n${tenant()}`), {});
  expect(c.store).toEqual({ kind: 'redis', url: 'redis://:hunter2@127.0.0.1:1' });
  const err = await startDaemon(c, { logger: silentLogger() }).then(() => undefined, (e: Error) => e);
  expect(err?.message).toMatch(/cannot connect/);
  expect(err?.message).not.toContain('hunter2');
});

test('run flags: one tenant; errors name the flag; flags win over the environment', () => {
  const c = configFromFlags({ mapping: SEED_MAPPING, quiet: '2s', listen: '127.0.0.1:7000', data: dir }, { CRM_SYNC_LISTEN: '0.0.0.0:1' });
  expect(c.tenants.map((t) => [t.name, t.quietMs, t.maxWaitMs])).toEqual([['default', 2000, 3_600_000]]);
  expect(c.listen.port).toBe(7000);
  expect(errorOf(() => configFromFlags({ mapping: SEED_MAPPING, maxWait: 'later' }, {})).message).toBe('command-line flags: --max-wait: must be a duration such as 300ms, 5m or 1h');
  expect(errorOf(() => configFromFlags({ mapping: SEED_MAPPING, tenant: 'a b' }, {})).message).toContain('--tenant: must be a tenant name');
  expect(errorOf(() => configFromFlags({ mapping: SEED_MAPPING, allowHosts: [''] }, {})).message).toContain('--allow-host');
});

test('tenants are checked before anything listens: mapping errors, missing secrets, forbidden CRM URLs', () => {
  const broken = write('broken.yaml', 'name: x\nbaseUrl: https://crm.example.com\nauth: { adapter: auth-key, secret: env:NOPE }\npayload: "{"\nendpoints: {}\n');
  const flags = (over: Record<string, unknown>) => configFromFlags({ mapping: SEED_MAPPING, data: dir, ...over }, {});
  expect(errorOf(() => prepareTenants(flags({ mapping: broken }))).message).toContain(broken);
  const key = process.env.SEED_CRM_AUTH_KEY;
  delete process.env.SEED_CRM_AUTH_KEY;
  try {
    expect(errorOf(() => prepareTenants(flags({}))).message).toContain('auth.secret: secret env:SEED_CRM_AUTH_KEY: environment variable SEED_CRM_AUTH_KEY is not set');
  } finally {
    process.env.SEED_CRM_AUTH_KEY = key;
  }
  // A named secret (secrets:) is checked like auth.secret.
  const named = write('named.yaml', readFileSync(SEED_MAPPING, 'utf8').replace(/^auth: .*$/m, '$&\nsecrets: { accessKey: "env:CRM_SYNC_TEST_NO_SUCH_KEY" }'));
  expect(errorOf(() => prepareTenants(flags({ mapping: named }))).message)
    .toContain('secrets.accessKey: secret env:CRM_SYNC_TEST_NO_SUCH_KEY: environment variable CRM_SYNC_TEST_NO_SUCH_KEY is not set');
  expect(errorOf(() => prepareTenants(flags({ baseUrl: 'http://10.0.0.5:8080' }))).message).toMatch(/tenants\.default\.baseUrl: .*not on the allow-list/);
  expect(prepareTenants(flags({ baseUrl: 'http://10.0.0.5:8080', allowHosts: ['10.0.0.5'] }))[0]!.baseUrl).toBe('http://10.0.0.5:8080');
});

test('allowSecrets: a tenant\'s mapping may name only the secret references its tenant allows (auth.secret, secrets:, adapter options)', () => {
  process.env.ACME_ALLOWED_KEY = 'k1';
  const mapping = (extra: string) => write('acme.yaml', readFileSync(SEED_MAPPING, 'utf8').replace(/^auth: .*$/m, `auth: { adapter: auth-key, header: Auth-Key, secret: "env:SEED_CRM_AUTH_KEY" }${extra}`));
  const config = (allow: string[], m: string) => loadConfigFile(write('c.yaml', `tenants:\n  acme:\n    mapping: ${JSON.stringify(m)}\n    allowSecrets: ${JSON.stringify(allow)}\n`), {});
  try {
    // The tenant's own: allowed.
    expect(prepareTenants(config(['env:SEED_CRM_*', 'env:ACME_*'], mapping('\nsecrets: { k: "env:ACME_ALLOWED_KEY" }')))).toHaveLength(1);
    // Another's environment: refused by name, before it is read.
    expect(errorOf(() => prepareTenants(config(['env:SEED_CRM_*', 'env:ACME_*'], mapping('\nsecrets: { k: "env:AWS_SECRET_ACCESS_KEY" }')))).message)
      .toContain('secrets.k: env:AWS_SECRET_ACCESS_KEY is not among the references tenants.acme.allowSecrets allows (env:SEED_CRM_*, env:ACME_*)');
    expect(errorOf(() => prepareTenants(config(['env:ACME_*'], mapping('')))).message).toContain('auth.secret: env:SEED_CRM_AUTH_KEY is not among the references');
    // A file path is compared once .. is resolved.
    expect(errorOf(() => prepareTenants(config(['env:SEED_CRM_*', 'file:/run/secrets/acme/*'], mapping('\nsecrets: { k: "file:/run/secrets/acme/../other/key" }')))).message)
      .toContain('secrets.k: file:/run/secrets/acme/../other/key is not among the references');
    // The pattern must itself be a reference.
    expect(errorOf(() => config(['ACME_*'], mapping(''))).message).toContain('tenants.acme.allowSecrets[0]: must be env:NAME or file:PATH');
  } finally {
    delete process.env.ACME_ALLOWED_KEY;
  }
});

test('what an auth adapter\'s options point at is checked at start-up too: an OAuth client secret, a token endpoint', () => {
  const mapping = (tokenUrl: string) => write('oauth.yaml', [
    'name: oauth', 'baseUrl: https://crm.example.com',
    'auth:', '  adapter: bearer', '  secret: env:CRM_SYNC_TEST_REFRESH', '  oauth:', `    tokenUrl: ${tokenUrl}`, '    clientId: abc', '    clientSecret: env:CRM_SYNC_TEST_CLIENT_SECRET',
    'flow: upsert', 'payload: "{ \\"phone\\": contact.phone }"', 'endpoints:', '  upsert: { method: POST, url: /leads }',
  ].join('\n'));
  const flags = (file: string) => configFromFlags({ mapping: file, data: dir }, {});
  process.env.CRM_SYNC_TEST_REFRESH = 'refresh-token';
  try {
    const good = mapping('https://accounts.example.com/oauth/v2/token');
    expect(errorOf(() => prepareTenants(flags(good))).message)
      .toContain('auth.oauth.clientSecret: secret env:CRM_SYNC_TEST_CLIENT_SECRET: environment variable CRM_SYNC_TEST_CLIENT_SECRET is not set');
    process.env.CRM_SYNC_TEST_CLIENT_SECRET = 'client-secret';
    expect(prepareTenants(flags(good))).toHaveLength(1);
    expect(errorOf(() => prepareTenants(flags(mapping('http://169.254.169.254/token')))).message).toMatch(/auth\.oauth\.tokenUrl: .*not on the allow-list/);
  } finally {
    delete process.env.CRM_SYNC_TEST_REFRESH;
    delete process.env.CRM_SYNC_TEST_CLIENT_SECRET;
  }
});

test('a tenant\'s scheduled reconcile: parsed with its defaults; too often, unknown keys, or a mapping without a fetch are refused', () => {
  const c = loadConfigFile(write('ok.yaml', tenant('    reconcile: { every: 24h, perSecond: 2 }\n')), {});
  expect(c.tenants[0]!.reconcile).toEqual({ everyMs: 24 * 3_600_000, perSecond: 2, repair: false });
  expect(loadConfigFile(write('repair.yaml', tenant('    reconcile: { every: 1h, repair: true }\n')), {}).tenants[0]!.reconcile)
    .toEqual({ everyMs: 3_600_000, perSecond: undefined, repair: true });

  const tooOften = errorOf(() => loadConfigFile(write('often.yaml', tenant('    reconcile: { every: 500ms }\n')), {}));
  expect((tooOften as InvalidConfigError).errors).toEqual([{ field: 'tenants.acme.reconcile.every', message: 'must be at least 1s' }]);
  const bad = errorOf(() => loadConfigFile(write('bad.yaml', tenant('    reconcile: { every: 1h, perSecond: 0, fix: true }\n')), {}));
  expect((bad as InvalidConfigError).errors).toEqual(expect.arrayContaining([
    { field: 'tenants.acme.reconcile.fix', message: 'is not a known field' },
    { field: 'tenants.acme.reconcile.perSecond', message: 'must be > 0' },
  ]));
  expect((errorOf(() => loadConfigFile(write('none.yaml', tenant('    reconcile: {}\n')), {})) as InvalidConfigError).errors)
    .toEqual([{ field: 'tenants.acme.reconcile.every', message: 'is required' }]);

  process.env.BEARER_CRM_TOKEN = 'token';
  try {
    const noFetch = write('nofetch.yaml', `tenants:\n  acme:\n    mapping: ${JSON.stringify(join(SEED_MAPPING, '..', 'bearer-no-fetch.yaml'))}\n    reconcile: { every: 1h }\n`);
    expect(errorOf(() => prepareTenants(loadConfigFile(noFetch, {}))).message).toMatch(/tenants\.acme\.reconcile: the mapping has no fetch endpoint/);
  } finally {
    delete process.env.BEARER_CRM_TOKEN;
  }
});
