import type { AuthAdapter } from '@crm-sync/core';
import { accessToken, oauthOptionsSchema, type OAuthOptions } from './oauth';

export { clearOAuthTokens, type OAuthOptions } from './oauth';

/**
 * `Authorization: Bearer <token>`; the scheme word is an option for CRMs like Zoho (`Zoho-oauthtoken`), and the token
 * can be an auth-param (`Token token=<token>`, Freshsales). With `oauth`,
 * the mapping's secret is a refresh token (or client secret) and the token sent is an OAuth 2.0 access token from
 * `oauth.tokenUrl`, kept until it expires and renewed when the CRM answers 401.
 */
export const adapter: AuthAdapter = {
  kind: 'auth',
  name: 'bearer',
  optionsSchema: {
    type: 'object',
    additionalProperties: false,
    properties: {
      prefix: { type: 'string', pattern: '^[A-Za-z0-9._~+/-]*$', patternMessage: 'must be one word (letters, digits and ._~+/-): the scheme, e.g. Bearer or Token; for Token token=<key> use prefix Token and param token', description: 'Scheme before the token. Default: Bearer. Empty: the token alone.' },
      param: { type: 'string', pattern: '^[A-Za-z0-9!#$%&\'*+.^_`|~-]+$', description: 'Send the token as this auth-param after the scheme (RFC 7235): `Token token=<token>` with prefix Token and param token (Freshsales, Freshdesk).' },
      header: { type: 'string', pattern: '^[A-Za-z0-9!#$%&\'*+.^_`|~-]+$', patternMessage: 'must be an HTTP header name: letters, digits and !#$%&\'*+.^_`|~-', description: 'Header name. Default: Authorization.' },
      oauth: oauthOptionsSchema,
    },
  },
  apply(request, secret, options) {
    const prefix = (options.prefix as string | undefined) ?? 'Bearer';
    const param = options.param as string | undefined;
    const credentials = param === undefined ? secret : `${param}=${secret}`;
    request.headers[(options.header as string | undefined) ?? 'Authorization'] = prefix ? `${prefix} ${credentials}` : credentials;
  },
  async credential(secret, options, ctx) {
    const oauth = options.oauth as OAuthOptions | undefined;
    return oauth === undefined ? secret : accessToken(secret, oauth, ctx);
  },
  references(options) {
    const oauth = options.oauth as OAuthOptions | undefined;
    if (oauth === undefined) return {};
    return {
      urls: { 'auth.oauth.tokenUrl': oauth.tokenUrl },
      ...(oauth.clientSecret === undefined ? {} : { secrets: { 'auth.oauth.clientSecret': oauth.clientSecret } }),
    };
  },
};

export default adapter;
