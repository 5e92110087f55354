import { createHash } from 'node:crypto';
import { encodeForm, maskSecrets, PermanentError, RetryableError, type CredentialContext } from '@crm-sync/core';

/** The mapping's `auth.oauth` block (validated by the adapter's options schema). */
export interface OAuthOptions {
  tokenUrl: string;
  /** `refresh_token` (Zoho, Salesforce, HubSpot apps): the mapping's secret is the refresh token. `client_credentials`: it is the client secret. */
  grant?: 'refresh_token' | 'client_credentials';
  clientId: string;
  /** For the refresh_token grant: a secret reference (`env:NAME`, `file:PATH`) to the client secret. */
  clientSecret?: string;
  scope?: string;
  /** The token's lifetime when the answer has no `expires_in` (Salesforce's has none). Default 3600. */
  expiresInSec?: number;
}

export const oauthOptionsSchema = {
  type: 'object',
  additionalProperties: false,
  required: ['tokenUrl', 'clientId'],
  description: 'Exchange the secret for an OAuth 2.0 access token at tokenUrl (kept until it expires, renewed on a 401).',
  properties: {
    tokenUrl: { type: 'string', pattern: '^https?://', patternMessage: 'must be an http(s) URL', description: 'The token endpoint, e.g. https://accounts.zoho.com/oauth/v2/token.' },
    grant: { enum: ['refresh_token', 'client_credentials'], description: 'Default refresh_token: the secret is the refresh token. client_credentials: the secret is the client secret.' },
    clientId: { type: 'string', minLength: 1, maxLength: 512 },
    clientSecret: { type: 'string', pattern: '^(env|file):.+$', patternMessage: 'must say where the secret is, env:NAME or file:/path/to/secret, never the secret itself', description: 'refresh_token grant: a reference (env:NAME or file:PATH) to the client secret.' },
    scope: { type: 'string', maxLength: 2048 },
    expiresInSec: { type: 'integer', minimum: 60, maximum: 86_400, description: 'Lifetime assumed when the token answer has no expires_in. Default 3600.' },
  },
} as const;

interface CachedToken {
  token: string;
  /** When to stop using it (ms since epoch): before it expires, by a tenth of its lifetime, at most a minute. */
  renewAt: number;
}

interface TokenSlot {
  current?: CachedToken;
  /** A token request under way: every sync that needs a token meanwhile waits for it rather than asking again. */
  pending?: Promise<CachedToken>;
}

/** Access tokens by token endpoint, client and secret: shared by every sync (and tenant) that uses the same grant. */
const slots = new Map<string, TokenSlot>();
const MAX_TOKEN_CHARS = 8192;

/** Forgets every cached access token (tests). */
export function clearOAuthTokens(): void {
  slots.clear();
}

/**
 * The access token for this grant: the cached one while it is fresh, else a new one from the token endpoint (one
 * request, however many syncs ask at once). When the CRM refused `ctx.rejected`, a new one is asked for unless the
 * cache already holds another.
 */
export async function accessToken(secret: string, oauth: OAuthOptions, ctx: CredentialContext): Promise<string> {
  const key = createHash('sha256').update(`${oauth.tokenUrl}\n${oauth.clientId}\n${oauth.grant ?? 'refresh_token'}\n${secret}`).digest('hex');
  let slot = slots.get(key);
  if (slot === undefined) slots.set(key, slot = {});
  const current = slot.current;
  if (current !== undefined && current.token !== ctx.rejected && ctx.now() < current.renewAt) return current.token;
  if (slot.pending === undefined) {
    const fetching = requestToken(secret, oauth, ctx);
    slot.pending = fetching;
    const settled = () => { if (slot!.pending === fetching) slot!.pending = undefined; };
    fetching.then((t) => { slot!.current = t; settled(); }, settled);
  }
  return (await slot.pending).token;
}

async function requestToken(secret: string, oauth: OAuthOptions, ctx: CredentialContext): Promise<CachedToken> {
  const grant = oauth.grant ?? 'refresh_token';
  const form: Record<string, string> = { grant_type: grant, client_id: oauth.clientId };
  if (grant === 'refresh_token') {
    form.refresh_token = secret;
    if (oauth.clientSecret !== undefined) form.client_secret = ctx.resolveSecret(oauth.clientSecret);
  } else {
    form.client_secret = secret;
  }
  if (oauth.scope !== undefined) form.scope = oauth.scope;
  const startedAt = ctx.now();
  const res = await ctx.http.send({
    method: 'POST', url: oauth.tokenUrl, body: encodeForm(form), timeoutMs: ctx.timeoutMs, maxResponseBytes: 65_536,
    headers: { 'content-type': 'application/x-www-form-urlencoded', accept: 'application/json' },
  });
  let body: Record<string, unknown> = {};
  try {
    const parsed: unknown = JSON.parse(res.body);
    if (parsed && typeof parsed === 'object' && !Array.isArray(parsed)) body = parsed as Record<string, unknown>;
  } catch {
    // not JSON: reported below by what is missing
  }
  // RFC 6749 §5.2 names the failure in `error`; some endpoints (Zoho) answer it with HTTP 200. The description may
  // echo what was sent: masked here with the grant's secrets, since the error may reach syncs that never saw them
  // (one token request serves every sync waiting for it).
  const sent = [secret, form.client_secret ?? ''];
  const described = typeof body.error_description === 'string' ? `: ${maskSecrets(body.error_description, sent).slice(0, 200)}` : '';
  const problem = typeof body.error === 'string' ? `${maskSecrets(body.error.slice(0, 100), sent)}${described}` : undefined;
  const context = { ...ctx.errorContext, status: res.status };
  if (res.status === 429 || res.status >= 500) {
    throw new RetryableError('ERR_CRM_UNAVAILABLE', `the token endpoint answered ${res.status}${problem ? ` (${problem})` : ''}`, { context });
  }
  const token = body.access_token;
  if (res.status >= 400 || problem !== undefined || typeof token !== 'string') {
    const why = problem ?? (typeof token !== 'string' ? 'no access_token in the answer' : `HTTP ${res.status}`);
    throw new PermanentError('ERR_CRM_AUTH', `the token endpoint refused the ${grant} grant (HTTP ${res.status}): ${why}`, { context: { ...context, reason: why } });
  }
  if (token === '' || token.length > MAX_TOKEN_CHARS || /[\r\n]/.test(token)) {
    throw new PermanentError('ERR_CRM_AUTH', 'the token endpoint answered an access_token that cannot go in a header', { context });
  }
  const expiresIn = typeof body.expires_in === 'number' ? body.expires_in
    : typeof body.expires_in === 'string' && /^\d+$/.test(body.expires_in) ? Number(body.expires_in) : oauth.expiresInSec ?? 3600;
  const lifetimeMs = Math.max(0, expiresIn) * 1000;
  return { token, renewAt: startedAt + lifetimeMs - Math.min(60_000, lifetimeMs / 10) };
}
