import { GotHttpClient, resolveSecretRef, type CredentialContext, type HttpRequest } from '@crm-sync/core';

export interface CredentialContextOptions {
  /** Hosts the adapter's own requests may reach over plain http. Default: 127.0.0.1 and localhost. */
  allowHosts?: readonly string[];
  /** The credential the CRM refused (the engine sets it after a 401, or what the mapping's credentialRejected said). */
  rejected?: string;
  now?: () => number;
  /** The mapping's request timeout. Default 10000. */
  timeoutMs?: number;
  /** Secret references resolved here first (`{"env:CLIENT_SECRET": "…"}`); any other goes to env:/file: as the engine does. */
  secrets?: Readonly<Record<string, string>>;
}

/** A CredentialContext as the engine gives one, plus what a test wants to see: the requests sent, and close(). */
export interface TestCredentialContext extends CredentialContext {
  /** The adapter's requests (step `auth`), in order. */
  readonly requests: HttpRequest[];
  /** What the adapter asked to have masked (maskAlso), in order. */
  readonly masked: string[];
  /** The same context with `rejected` set: what the engine passes after the CRM refused that credential. */
  rejecting(credential: string): TestCredentialContext;
  /** Closes the HTTP client's connections. */
  close(): void;
}

/**
 * For unit tests of an auth adapter's `credential` step (an OAuth token exchange): a context like the engine's, with
 * a real HTTP client under the same network policy (loopback allowed), so the adapter can be pointed at a test token
 * endpoint (`startOAuthServer`) and its caching, sharing and renewal checked by counting `requests`.
 */
export function credentialContext(opts: CredentialContextOptions = {}): TestCredentialContext {
  const client = new GotHttpClient({ allowHosts: opts.allowHosts ?? ['127.0.0.1', 'localhost'] });
  const requests: HttpRequest[] = [];
  const masked: string[] = [];
  const make = (rejected: string | undefined): TestCredentialContext => ({
    http: { send: (req) => { requests.push({ ...req, step: 'auth' }); return client.send({ ...req, step: 'auth' }); } },
    resolveSecret: (ref) => opts.secrets?.[ref] ?? resolveSecretRef(ref),
    maskAlso: (value) => { masked.push(value); },
    now: opts.now ?? Date.now,
    ...(rejected === undefined ? {} : { rejected }),
    timeoutMs: opts.timeoutMs ?? 10_000,
    errorContext: { tenant: 'test', contactId: 'test-contact', step: 'auth' },
    requests,
    masked,
    rejecting: (credential) => make(credential),
    close: () => client.close(),
  });
  return make(opts.rejected);
}
