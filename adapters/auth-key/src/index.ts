import type { AuthAdapter } from '@crm-sync/core';

/** The contract's default: the secret in a header, `Auth-Key: <key>` unless the mapping names another header. */
export const adapter: AuthAdapter = {
  kind: 'auth',
  name: 'auth-key',
  optionsSchema: {
    type: 'object',
    additionalProperties: false,
    properties: { header: { type: 'string', pattern: '^[A-Za-z0-9!#$%&\'*+.^_`|~-]+$', patternMessage: 'must be an HTTP header name: letters, digits and !#$%&\'*+.^_`|~-', description: 'Header name. Default: Auth-Key.' } },
  },
  apply(request, secret, options) {
    request.headers[(options.header as string | undefined) ?? 'Auth-Key'] = secret;
  },
};

export default adapter;
