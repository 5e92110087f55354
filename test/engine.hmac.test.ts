/** Signed requests (the hmac auth adapter) against the reference CRM's signature check, over real HTTP. */
import { GotHttpClient, SyncEngine, SyncError } from '@crm-sync/core';
import { compile, contact, startHarness, type Harness } from './engine.fixtures';

const HMAC = { flow: 'fetch-create-update', auth: 'hmac', encoding: 'json' } as const;

let h: Harness;
afterEach(async () => { await h?.close(); });

async function failure(engine: SyncEngine): Promise<SyncError> {
  const err = await engine.sync(compile(HMAC), contact(), { baseUrl: h.crm.url }).then(() => undefined, (e: unknown) => e);
  if (!(err instanceof SyncError)) throw new Error(`expected a SyncError, got ${String(err)}`);
  return err;
}

it('the CRM refuses a signature made with another key: a permanent auth error, nothing written', async () => {
  h = await startHarness(HMAC, {}, 'not-the-key');
  const err = await failure(h.engine);
  expect(err).toMatchObject({ code: 'ERR_CRM_AUTH', retryable: false, context: { step: 'fetch', status: 401, reason: 'Missing or invalid X-Signature header' } });
  expect(h.crm.leads()).toEqual([]);
});

it('the timestamp is the engine\'s clock: one too far from the CRM\'s is refused (no replay of old requests)', async () => {
  h = await startHarness(HMAC);
  const http = new GotHttpClient({ allowHosts: ['127.0.0.1'] });
  try {
    const err = await failure(new SyncEngine({ http, now: () => Date.now() - 10 * 60_000 }));
    expect(err).toMatchObject({ code: 'ERR_CRM_AUTH', context: { status: 401, reason: "X-Timestamp is too far from the server's clock" } });
    const sent = h.crm.requests()[0]!;
    expect(Number(sent.headers['x-timestamp'])).toBeLessThan(Date.now() / 1000 - 590);
    expect(sent.headers['x-signature']).toMatch(/^sha256=[0-9a-f]{64}$/);
  } finally {
    http.close();
  }
});
