import { randomBytes } from 'node:crypto';
import { readBody } from './reference-crm/body';
import { sameSecret, sendJson, TestServer } from './http-server';

/**
 * An OAuth 2.0 token endpoint (RFC 6749 §4.4 client credentials and §6 refresh token grants, form-encoded), for
 * testing auth adapters that exchange a secret for access tokens. Clients authenticate in the form
 * (client_secret_post) or with HTTP Basic (client_secret_basic, RFC 6749 §2.3.1). It issues random access tokens that expire after
 * `ttlSec`; an emulator asks `accepts(token)` whether a token is one it issued and still valid. Errors follow §5.2
 * (`{"error": …}` with 400/401), or, with `errorsInOk` (as Zoho's accounts server does), with HTTP 200.
 */
export interface OAuthServerOptions {
  clientId?: string;
  clientSecret?: string;
  refreshToken?: string;
  /** Lifetime of an access token, in seconds (its `expires_in`). Default 3600. */
  ttlSec?: number;
  /** Leave `expires_in` out of the answer (as Salesforce does). */
  omitExpiresIn?: boolean;
  /** Answer errors with HTTP 200 (Zoho's accounts server). */
  errorsInOk?: boolean;
  /** The path of the token endpoint. Default /oauth/v2/token. */
  path?: string;
  now?: () => number;
}

export interface TokenRequestLog {
  grantType: string;
  status: number;
  /** How the client authenticated: HTTP Basic (client_secret_basic) or in the form (client_secret_post). */
  clientAuth?: 'basic' | 'post';
  /** Set when the request was refused. */
  error?: string;
}

export interface OAuthServer {
  /** The token endpoint's URL. */
  readonly tokenUrl: string;
  readonly clientId: string;
  readonly clientSecret: string;
  readonly refreshToken: string;
  /** Whether `token` is an access token this server issued that has neither expired nor been revoked. */
  accepts(token: string | undefined): boolean;
  /** Token requests so far, in order. */
  requests(): TokenRequestLog[];
  /** Every access token issued so far stops being accepted (as if they expired early); new ones can be obtained. */
  expireAccessTokens(): void;
  /** The refresh token stops working (revoked by the user): token requests answer invalid_grant / invalid_code. */
  revokeRefreshToken(): void;
  /** The next `times` token requests answer this HTTP status (5xx: the accounts server is down). */
  failNext(status: number, times?: number): void;
  close(): Promise<void>;
}

export async function startOAuthServer(opts: OAuthServerOptions = {}): Promise<OAuthServer> {
  const clientId = opts.clientId ?? 'test-client-id';
  const clientSecret = opts.clientSecret ?? 'test-client-secret-7c1d';
  const refreshToken = opts.refreshToken ?? 'test-refresh-token-9f2e';
  const ttlSec = opts.ttlSec ?? 3600;
  const now = opts.now ?? Date.now;
  const path = opts.path ?? '/oauth/v2/token';
  const issued = new Map<string, number>();
  const log: TokenRequestLog[] = [];
  let revoked = false;
  let failures: { status: number; times: number } | undefined;

  const server = new TestServer(async (req, res) => {
    const raw = await readBody(req, 65_536);
    const url = new URL(req.url ?? '/', 'http://oauth.invalid');
    const form = new URLSearchParams(raw.buf.toString('utf8'));
    const grantType = form.get('grant_type') ?? '';
    // RFC 6749 §2.3.1: client_secret_basic (which a server must support) or client_secret_post, never both.
    const basic = /^Basic\s+([A-Za-z0-9+/=]+)$/i.exec(String(req.headers.authorization ?? ''));
    const pair = basic ? Buffer.from(basic[1]!, 'base64').toString('utf8') : undefined;
    const at = pair?.indexOf(':') ?? -1;
    const decode = (s: string) => { try { return decodeURIComponent(s.replace(/\+/g, ' ')); } catch { return s; } };
    const client = pair !== undefined && at >= 0
      ? { id: decode(pair.slice(0, at)), secret: decode(pair.slice(at + 1)), how: 'basic' as const }
      : { id: form.get('client_id'), secret: form.get('client_secret') ?? '', how: 'post' as const };
    const answer = (status: number, body: Record<string, unknown>) => {
      log.push({ grantType, status, clientAuth: client.how, ...(typeof body.error === 'string' ? { error: body.error } : {}) });
      sendJson(res, { status, body });
    };
    const refuse = (status: number, error: string, description: string) => answer(opts.errorsInOk ? 200 : status, { error, error_description: description });
    if (req.method !== 'POST' || url.pathname !== path) return refuse(404, 'invalid_request', 'no such endpoint');
    if (failures !== undefined && failures.times > 0) {
      failures.times--;
      return answer(failures.status, { error: 'temporarily_unavailable', error_description: 'try again later' });
    }
    if (basic && form.has('client_secret')) return refuse(400, 'invalid_request', 'more than one client authentication method');
    if (client.id !== clientId) return refuse(401, 'invalid_client', 'unknown client');
    if (grantType === 'refresh_token') {
      const given = form.get('refresh_token') ?? '';
      if (!sameSecret(client.secret, clientSecret)) return refuse(401, 'invalid_client', 'client authentication failed');
      if (revoked || !sameSecret(given, refreshToken)) return refuse(400, opts.errorsInOk ? 'invalid_code' : 'invalid_grant', 'the refresh token is invalid or revoked');
    } else if (grantType === 'client_credentials') {
      if (!sameSecret(client.secret, clientSecret)) return refuse(401, 'invalid_client', 'client authentication failed');
    } else {
      return refuse(400, 'unsupported_grant_type', `grant_type ${JSON.stringify(grantType)}`);
    }
    const token = `at-${randomBytes(12).toString('hex')}`;
    issued.set(token, now() + ttlSec * 1000);
    answer(200, { access_token: token, token_type: 'Bearer', ...(opts.omitExpiresIn ? {} : { expires_in: ttlSec }) });
  }, (res, err) => sendJson(res, { status: 500, body: { error: 'server_error', error_description: String(err) } }));
  await server.listen('127.0.0.1', 0);

  return {
    tokenUrl: server.url + path,
    clientId,
    clientSecret,
    refreshToken,
    accepts(token) {
      const until = token === undefined ? undefined : issued.get(token);
      return until !== undefined && now() < until;
    },
    requests: () => log.map((l) => ({ ...l })),
    expireAccessTokens() {
      for (const t of issued.keys()) issued.set(t, 0);
    },
    revokeRefreshToken() {
      revoked = true;
    },
    failNext(status, times = 1) {
      failures = { status, times };
    },
    close: () => server.close(),
  };
}
