import type { OutgoingRequest } from '@crm-sync/core';
import { credentialContext, runAuthAdapterSuite, startOAuthServer, type OAuthServer, type TestCredentialContext } from '@crm-sync/testkit';
import { adapter, clearOAuthTokens } from '..';

const TOKEN = 'tok.en+with/special=chars';

function request(): OutgoingRequest {
  return { method: 'GET', url: new URL('https://crm.example.com/crm/fetch?phone=%2B919876543210'), headers: {}, body: undefined };
}

function authorization(options: Record<string, unknown>, header = 'Authorization'): string | undefined {
  const req = request();
  adapter.apply(req, TOKEN, options);
  return req.headers[header];
}

describe('bearer adapter', () => {
  it('sends Authorization: Bearer <token> by default', () => {
    expect(authorization({})).toBe(`Bearer ${TOKEN}`);
  });

  it('uses another scheme word when the CRM wants one (Zoho-oauthtoken)', () => {
    expect(authorization({ prefix: 'Zoho-oauthtoken' })).toBe(`Zoho-oauthtoken ${TOKEN}`);
  });

  it('sends the token as an auth-param after the scheme (Freshsales: Token token=<key>)', () => {
    expect(authorization({ prefix: 'Token', param: 'token' })).toBe(`Token token=${TOKEN}`);
    expect(authorization({ prefix: '', param: 'apikey' })).toBe(`apikey=${TOKEN}`);
  });

  it('sends the token alone with an empty prefix, in the header the mapping names', () => {
    expect(authorization({ prefix: '', header: 'X-Token' }, 'X-Token')).toBe(TOKEN);
  });
});

runAuthAdapterSuite(adapter, {
  secret: TOKEN,
  cases: [
    { options: {}, at: 'header:Authorization' },
    { options: { prefix: 'Zoho-oauthtoken' }, at: 'header:Authorization' },
    { options: { prefix: '', header: 'X-Token' }, at: 'header:X-Token' },
    { options: { prefix: 'Token', param: 'token' }, at: 'header:Authorization' },
  ],
});

describe('the oauth credential step, alone (testkit credentialContext against startOAuthServer)', () => {
  let oauth: OAuthServer;
  let ctx: TestCredentialContext;
  beforeEach(async () => {
    clearOAuthTokens();
    oauth = await startOAuthServer();
    ctx = credentialContext({ secrets: { 'env:TEST_CLIENT_SECRET': oauth.clientSecret } });
  });
  afterEach(async () => {
    ctx.close();
    await oauth.close();
  });
  const options = () => ({ oauth: { tokenUrl: oauth.tokenUrl, clientId: oauth.clientId, clientSecret: 'env:TEST_CLIENT_SECRET' } });

  it('exchanges the refresh token once for concurrent callers, keeps it, and renews it when it is refused', async () => {
    const [a, b] = await Promise.all([adapter.credential!(oauth.refreshToken, options(), ctx), adapter.credential!(oauth.refreshToken, options(), ctx)]);
    expect(a).toBe(b);
    expect(oauth.accepts(a)).toBe(true);
    expect(await adapter.credential!(oauth.refreshToken, options(), ctx)).toBe(a);
    expect(ctx.requests).toHaveLength(1);
    const renewed = await adapter.credential!(oauth.refreshToken, options(), ctx.rejecting(a));
    expect(renewed).not.toBe(a);
    expect(ctx.requests).toHaveLength(2);
  });
});
