import type { AuthAdapter } from '@crm-sync/core';

/** `Authorization: Bearer <token>`; the scheme word is an option for CRMs like Zoho (`Zoho-oauthtoken`). */
export const adapter: AuthAdapter = {
  kind: 'auth',
  name: 'bearer',
  optionsSchema: {
    type: 'object',
    additionalProperties: false,
    properties: {
      prefix: { type: 'string', pattern: '^[A-Za-z0-9._~+/-]*$', description: 'Scheme before the token. Default: Bearer. Empty: the token alone.' },
      header: { type: 'string', pattern: '^[A-Za-z0-9!#$%&\'*+.^_`|~-]+$', description: 'Header name. Default: Authorization.' },
    },
  },
  apply(request, secret, options) {
    const prefix = (options.prefix as string | undefined) ?? 'Bearer';
    request.headers[(options.header as string | undefined) ?? 'Authorization'] = prefix ? `${prefix} ${secret}` : secret;
  },
};

export default adapter;
