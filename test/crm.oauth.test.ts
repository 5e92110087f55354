/**
 * OAuth 2.0 access tokens (the bearer adapter's `oauth` option): mappings/zoho.yaml with its secret as a refresh token,
 * against the Zoho emulator that accepts only access tokens a real token endpoint (testkit's OAuth server) issued.
 * Tokens are fetched once and shared, renewed before they expire and when the CRM answers 401, never leaked.
 */
import {
  compileDefinition, GotHttpClient, SyncEngine, SyncError, toContact,
  type CompiledMapping, type MappingDefinition, type SyncOptions, type SyncResult,
} from '@crm-sync/core';
import { startOAuthServer, startZohoEmulator, type Emulator, type OAuthServer, type ZohoLead } from '@crm-sync/testkit';
import { verifyMapping } from '@crm-sync/cli';
import { Runner, SqliteStore } from '@crm-sync/runner';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { shippedMapping } from './crm.harness';

let oauth: OAuthServer;
let zoho: Emulator<ZohoLead>;
let http: GotHttpClient;
let clock: number | undefined;
const now = () => clock ?? Date.now();

const SECRETS: Record<string, () => string> = {
  'env:ZOHO_REFRESH_TOKEN': () => oauth.refreshToken,
  'env:ZOHO_CLIENT_SECRET': () => oauth.clientSecret,
};

/** mappings/zoho.yaml, its auth exchanging the refresh token at the OAuth server. */
function oauthMapping(extra: Record<string, unknown> = {}): CompiledMapping {
  const shipped = shippedMapping('zoho').definition;
  const definition = {
    ...shipped,
    auth: {
      adapter: 'bearer', prefix: 'Zoho-oauthtoken', secret: 'env:ZOHO_REFRESH_TOKEN',
      oauth: { tokenUrl: oauth.tokenUrl, clientId: oauth.clientId, clientSecret: 'env:ZOHO_CLIENT_SECRET', ...extra },
    },
  } as MappingDefinition;
  return compileDefinition(definition, { hash: `oauth-${oauth.tokenUrl}-${JSON.stringify(extra)}` });
}

function engine(): SyncEngine {
  return new SyncEngine({
    http, now,
    secrets: (ref) => {
      const value = SECRETS[ref];
      if (!value) throw new Error(`unexpected secret reference ${ref}`);
      return value();
    },
  });
}

const contact = (n: number) => toContact({ contactId: `c${n}`, phone: `+9198765${String(43000 + n).padStart(5, '0')}`, name: `Contact ${n}`, email: `c${n}@example.com` }, { defaultTenant: 'acme' });

function sync(mapping: CompiledMapping, n: number, opts: SyncOptions = {}): Promise<SyncResult> {
  return engine().sync(mapping, contact(n), { baseUrl: zoho.url, ...opts });
}

async function syncFails(mapping: CompiledMapping, n: number): Promise<SyncError> {
  const err = await sync(mapping, n).then((r) => new Error(`expected a failure, got ${r.action}`), (e: unknown) => e);
  if (!(err instanceof SyncError)) throw err;
  return err;
}

/** Every secret value of the test: none may appear in what the engine records or throws. */
function leaks(text: string): string[] {
  const issued = zoho.requests().map((r) => r.headers.authorization?.replace(/^Zoho-oauthtoken /, '')).filter((t): t is string => !!t);
  return [oauth.refreshToken, oauth.clientSecret, ...issued].filter((s) => text.includes(s));
}

beforeEach(async () => {
  clock = undefined;
  oauth = await startOAuthServer({ errorsInOk: true, now });
  zoho = await startZohoEmulator({ acceptsToken: (t) => oauth.accepts(t) });
  http = new GotHttpClient({ allowHosts: ['127.0.0.1'] });
});
afterEach(async () => {
  http.close();
  await zoho.close();
  await oauth.close();
});

it('one token request serves many concurrent syncs; the access token, not the refresh token, reaches the CRM', async () => {
  const mapping = oauthMapping();
  const results = await Promise.all(Array.from({ length: 12 }, (_, n) => sync(mapping, n)));
  expect(results.every((r) => r.action === 'upserted')).toBe(true);
  expect(zoho.records()).toHaveLength(12);
  expect(oauth.requests()).toEqual([{ grantType: 'refresh_token', status: 200, clientAuth: 'post' }]);
  const sent = new Set(zoho.requests().map((r) => r.headers.authorization));
  expect(sent.size).toBe(1);
  expect([...sent][0]).toMatch(/^Zoho-oauthtoken at-[0-9a-f]+$/);
  // The token request is one of the first sync's calls (step auth), masked like the rest.
  const withAuth = results.filter((r) => r.calls.some((c) => c.step === 'auth'));
  expect(withAuth).toHaveLength(1);
  expect(withAuth[0]!.calls.map((c) => `${c.step} ${c.status}`)).toEqual(['auth 200', 'upsert 201']);
  expect(leaks(JSON.stringify(results))).toEqual([]);
});

it('a token that expires is renewed before it is used again (no 401 needed)', async () => {
  await oauth.close();
  clock = Date.parse('2026-01-01T00:00:00Z');
  oauth = await startOAuthServer({ errorsInOk: true, ttlSec: 120, now });
  const mapping = oauthMapping();
  await sync(mapping, 1);
  clock += 100_000; // within 2 min, but past the renewal point (a tenth of the lifetime before it ends)
  await sync(mapping, 2);
  clock += 10_000;
  await sync(mapping, 3);
  expect(oauth.requests().map((r) => r.status)).toEqual([200, 200]);
  expect(zoho.requests().map((r) => r.status)).toEqual([201, 201, 201]);
});

it('the CRM answers 401 to a revoked access token: one new token for all the syncs that got it, each request sent again once', async () => {
  const mapping = oauthMapping();
  await sync(mapping, 0);
  oauth.expireAccessTokens();
  const results = await Promise.all(Array.from({ length: 6 }, (_, n) => sync(mapping, n + 1)));
  expect(results.every((r) => r.action === 'upserted')).toBe(true);
  expect(oauth.requests()).toHaveLength(2);
  for (const r of results) expect(r.calls.filter((c) => c.step === 'upsert').map((c) => c.status)).toEqual([401, 201]);
  expect(zoho.records()).toHaveLength(7);
});

it('a CRM that keeps refusing the new token too fails the sync (no loop), permanently, naming the 401', async () => {
  const mapping = oauthMapping();
  await sync(mapping, 0);
  await zoho.close();
  zoho = await startZohoEmulator({ acceptsToken: () => false });
  const err = await syncFails(mapping, 1);
  expect(err).toMatchObject({ code: 'ERR_CRM_AUTH', retryable: false, context: { status: 401, step: 'upsert' } });
  expect(zoho.requests().map((r) => r.status)).toEqual([401, 401]);
  expect(oauth.requests()).toHaveLength(2);
});

it('a revoked refresh token is a permanent auth failure naming the token endpoint\'s error, and nothing reaches the CRM', async () => {
  oauth.revokeRefreshToken();
  const err = await syncFails(oauthMapping(), 1);
  expect(err).toMatchObject({ code: 'ERR_CRM_AUTH', retryable: false, context: { step: 'auth', status: 200 } });
  expect(err.message).toContain('invalid_code');
  expect(zoho.requests()).toEqual([]);
  expect(leaks(`${err.message} ${JSON.stringify(err.context)}`)).toEqual([]);
});

it('a token endpoint that is down is a retryable failure, and the next sync gets its token', async () => {
  oauth.failNext(503);
  const err = await syncFails(oauthMapping(), 1);
  expect(err).toMatchObject({ code: 'ERR_CRM_UNAVAILABLE', retryable: true, context: { step: 'auth', status: 503 } });
  await expect(sync(oauthMapping(), 1)).resolves.toMatchObject({ action: 'upserted' });
});

it('syncs that wait for one failed token request each get their own error, naming their own contact', async () => {
  oauth.failNext(503);
  const errors = await Promise.all([1, 2, 3].map((n) => syncFails(oauthMapping(), n)));
  expect(oauth.requests()).toHaveLength(1);
  expect(errors.map((e) => [e.code, e.context.contactId, e.context.step])).toEqual([
    ['ERR_CRM_UNAVAILABLE', 'c1', 'auth'], ['ERR_CRM_UNAVAILABLE', 'c2', 'auth'], ['ERR_CRM_UNAVAILABLE', 'c3', 'auth'],
  ]);
});

it('a token endpoint that cannot be reached is a retryable failure of step auth, naming the contact', async () => {
  const mapping = oauthMapping();
  await oauth.close();
  const err = await syncFails(mapping, 1);
  expect(err).toMatchObject({ retryable: true, context: { step: 'auth', tenant: 'acme', contactId: 'c1' } });
  expect(zoho.requests()).toEqual([]);
});

it('the client_credentials grant sends the mapping secret as the client secret', async () => {
  SECRETS['env:ZOHO_CLIENT_CREDENTIALS'] = () => oauth.clientSecret;
  const shipped = shippedMapping('zoho').definition;
  const mapping = compileDefinition({
    ...shipped,
    auth: { adapter: 'bearer', prefix: 'Zoho-oauthtoken', secret: 'env:ZOHO_CLIENT_CREDENTIALS', oauth: { tokenUrl: oauth.tokenUrl, clientId: oauth.clientId, grant: 'client_credentials' } },
  } as MappingDefinition, { hash: `cc-${oauth.tokenUrl}` });
  await expect(sync(mapping, 1)).resolves.toMatchObject({ action: 'upserted' });
  expect(oauth.requests()).toEqual([{ grantType: 'client_credentials', status: 200, clientAuth: 'post' }]);
});

it('a static bearer token the CRM refuses is not sent again', async () => {
  SECRETS['env:ZOHO_ACCESS_TOKEN'] = () => 'a-static-token-zoho-does-not-know';
  const err = await engine().sync(shippedMapping('zoho'), contact(1), { baseUrl: zoho.url }).catch((e: unknown) => e);
  expect(err).toMatchObject({ code: 'ERR_CRM_AUTH' });
  expect(zoho.requests()).toHaveLength(1);
});

it('bad oauth options are refused when the mapping is compiled, naming the field', () => {
  expect(() => oauthMapping({ tokenUrl: 'ftp://x' })).toThrow(/auth\.oauth\.tokenUrl/);
  expect(() => oauthMapping({ clientSecret: 'plain-text-secret' })).toThrow(/auth\.oauth\.clientSecret/);
  expect(() => oauthMapping({ grant: 'password' })).toThrow(/auth\.oauth\.grant/);
});

it('verify runs the whole check with OAuth and masks the refresh token, the client secret and the access token', async () => {
  process.env.ZOHO_REFRESH_TOKEN = oauth.refreshToken;
  process.env.ZOHO_CLIENT_SECRET = oauth.clientSecret;
  try {
    const report = await verifyMapping(oauthMapping(), { baseUrl: zoho.url, http });
    expect(report.ok).toBe(true);
    const text = JSON.stringify(report);
    expect(text).toContain('oauth/v2/token');
    expect(leaks(text)).toEqual([]);
  } finally {
    delete process.env.ZOHO_REFRESH_TOKEN;
    delete process.env.ZOHO_CLIENT_SECRET;
  }
});

it('the runner: a stream of changes while tokens expire and are revoked ends with every lead current, no dead letter, few token requests', async () => {
  await oauth.close();
  oauth = await startOAuthServer({ errorsInOk: true, ttlSec: 60, now });
  clock = Date.now();
  const dir = mkdtempSync(join(tmpdir(), 'crm-sync-oauth-runner-'));
  const store = new SqliteStore(join(dir, 'crm-sync.db'));
  const runner = new Runner({
    tenants: [{ name: 'acme', mapping: oauthMapping(), baseUrl: zoho.url, quietMs: 30, maxWaitMs: 500, concurrency: 4 }],
    store, engine: engine(), retry: { baseMs: 20, maxMs: 50, budgetMs: 2000 },
  });
  runner.start();
  const wave = async (version: number) => {
    await runner.ingest(Array.from({ length: 20 }, (_, n) => ({ contactId: `c${n}`, phone: `+9198765${String(43000 + n).padStart(5, '0')}`, name: `Contact ${n} v${version}`, email: `c${n}@example.com` })));
    await runner.whenIdle();
  };
  try {
    await wave(1);
    oauth.expireAccessTokens(); // revoked at the CRM: the next requests get 401s
    await wave(2);
    clock += 58_000; // past the token's renewal point: renewed before use
    await wave(3);
    expect(await runner.deadLetters()).toEqual([]);
    expect(zoho.records().map((r) => `${String(r.First_Name)} ${String(r.Last_Name)}`).sort()).toEqual(Array.from({ length: 20 }, (_, n) => `Contact ${n} v3`).sort());
    // One token per wave at most: the first, the one after the revocation (shared by the syncs that got a 401), the renewal.
    expect(oauth.requests().map((r) => r.status)).toEqual([200, 200, 200]);
    const statuses = zoho.requests().map((r) => r.status);
    expect(statuses.filter((st) => st === 401).length).toBeGreaterThan(0);
    expect(statuses.filter((st) => st !== 401).length).toBe(60);
  } finally {
    await runner.stop();
    await store.close();
    rmSync(dir, { recursive: true, force: true });
  }
});
