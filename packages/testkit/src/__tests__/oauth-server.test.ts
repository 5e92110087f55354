import { startOAuthServer, type OAuthServer } from '../oauth-server';

let oauth: OAuthServer;
beforeEach(async () => { oauth = await startOAuthServer(); });
afterEach(async () => { await oauth.close(); });

const token = (body: Record<string, string>, headers: Record<string, string> = {}) => fetch(oauth.tokenUrl, {
  method: 'POST', headers: { 'content-type': 'application/x-www-form-urlencoded', ...headers }, body: new URLSearchParams(body).toString(),
});
const basic = (id: string, secret: string) => ({ authorization: `Basic ${Buffer.from(`${encodeURIComponent(id)}:${encodeURIComponent(secret)}`).toString('base64')}` });

describe('the OAuth test server: client authentication (RFC 6749 §2.3.1)', () => {
  it('takes the client in the form (client_secret_post) or in HTTP Basic (client_secret_basic)', async () => {
    const post = await token({ grant_type: 'client_credentials', client_id: oauth.clientId, client_secret: oauth.clientSecret });
    const viaBasic = await token({ grant_type: 'client_credentials' }, basic(oauth.clientId, oauth.clientSecret));
    expect([post.status, viaBasic.status]).toEqual([200, 200]);
    expect(oauth.accepts(((await viaBasic.json()) as { access_token: string }).access_token)).toBe(true);
    expect(oauth.requests().map((r) => r.clientAuth)).toEqual(['post', 'basic']);
  });

  it('refuses a wrong Basic secret, and both methods at once', async () => {
    expect((await token({ grant_type: 'client_credentials' }, basic(oauth.clientId, 'wrong'))).status).toBe(401);
    const both = await token({ grant_type: 'client_credentials', client_secret: oauth.clientSecret }, basic(oauth.clientId, oauth.clientSecret));
    expect(both.status).toBe(400);
    expect(await both.json()).toMatchObject({ error: 'invalid_request' });
  });
});
