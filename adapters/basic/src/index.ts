import { PermanentError, type AuthAdapter } from '@crm-sync/core';

/** A username or password as RFC 7617 allows it: no control characters; a user-id has no colon. */
const NO_CONTROLS = '^[^\\u0000-\\u001f\\u007f]*$';

interface BasicOptions {
  username?: string;
  password?: string;
  header?: string;
}

/**
 * `user:password`: the secret fills whichever of the two the options leave out; with neither, it is the pair, or a
 * user alone (an API key sent as the user with an empty password, as Stripe takes it).
 */
export function userPass(secret: string, options: BasicOptions): string {
  if (options.username !== undefined) return `${options.username}:${secret}`;
  if (options.password !== undefined) {
    if (secret.includes(':')) throw new PermanentError('ERR_AUTH_SECRET', 'the basic adapter\'s secret is the username here (auth.password is set), and a username cannot hold ":"');
    return `${secret}:${options.password}`;
  }
  return secret.includes(':') ? secret : `${secret}:`;
}

function encoded(secret: string, options: BasicOptions): string {
  return Buffer.from(userPass(secret, options), 'utf8').toString('base64');
}

/**
 * HTTP Basic authentication (RFC 7617): `Authorization: Basic base64(user:password)`, UTF-8. The secret is the
 * password for a fixed `username` (an API user), the username for a fixed `password` (an API key sent as the user
 * with a dummy password, as Freshdesk takes it), or with neither option the whole `user:password` (a secret without
 * a colon is a user with an empty password).
 * base64 can be decoded back to the secret, so it is declared as a derived secret: masked wherever the secret is.
 */
export const adapter: AuthAdapter = {
  kind: 'auth',
  name: 'basic',
  optionsSchema: {
    type: 'object',
    additionalProperties: false,
    properties: {
      username: { type: 'string', minLength: 1, pattern: '^[^:\\u0000-\\u001f\\u007f]*$', patternMessage: 'must not hold ":" or control characters', description: 'The user; the secret is then the password.' },
      password: { type: 'string', pattern: NO_CONTROLS, description: 'A fixed password (often "X"); the secret is then the username (an API key).' },
      header: { type: 'string', pattern: '^[A-Za-z0-9!#$%&\'*+.^_`|~-]+$', patternMessage: 'must be an HTTP header name: letters, digits and !#$%&\'*+.^_`|~-', description: 'Header name. Default: Authorization.' },
    },
    not: { required: ['username', 'password'] },
  },
  apply(request, secret, options) {
    request.headers[(options as BasicOptions).header ?? 'Authorization'] = `Basic ${encoded(secret, options as BasicOptions)}`;
  },
  derivedSecrets(secret, options) {
    try {
      return [encoded(secret, options as BasicOptions), userPass(secret, options as BasicOptions)];
    } catch {
      return []; // apply reports it
    }
  },
};

export default adapter;
