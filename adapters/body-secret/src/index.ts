import { PermanentError, type AuthAdapter } from '@crm-sync/core';

/**
 * The secret as a body field (or query parameter). Not recommended: bodies and URLs end up in CRM-side logs.
 * Kept because legacy CRMs accept nothing else; crm-sync still masks it everywhere it records a request.
 */
export const adapter: AuthAdapter = {
  kind: 'auth',
  name: 'body-secret',
  optionsSchema: {
    type: 'object',
    additionalProperties: false,
    properties: {
      field: { type: 'string', minLength: 1, description: 'Field name. Default: secret.' },
      in: { type: 'string', enum: ['body', 'query'], description: 'body (default; query for requests without a body) or query.' },
    },
  },
  apply(request, secret, options) {
    const field = (options.field as string | undefined) ?? 'secret';
    const where = (options.in as string | undefined) ?? 'body';
    if (where === 'query' || request.body === undefined) {
      request.url.searchParams.set(field, secret);
      return;
    }
    if (typeof request.body !== 'object' || request.body === null || Array.isArray(request.body)) {
      throw new PermanentError('ERR_AUTH_BODY', `body-secret needs an object body to add "${field}" to (use in: query)`);
    }
    request.body = { ...(request.body as Record<string, unknown>), [field]: secret };
  },
};

export default adapter;
