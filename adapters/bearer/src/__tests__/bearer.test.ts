import type { OutgoingRequest } from '@crm-sync/core';
import { runAuthAdapterSuite } from '@crm-sync/testkit';
import { adapter } from '..';

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
