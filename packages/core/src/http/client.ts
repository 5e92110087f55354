import dns from 'node:dns';
import http from 'node:http';
import https from 'node:https';
import net from 'node:net';
import got, { type OptionsOfBufferResponseBody, RequestError } from 'got';
import { PermanentError, RetryableError, SyncError } from '../errors';
import { isPrivateAddress } from './address';
import { ACCEPT_ENCODING, decodeBody, tooLarge as responseTooLarge } from './decompress';

export { isPrivateAddress };

export interface HttpRequest {
  /** Which endpoint this call is for (not sent; for canned clients, metrics and logs). */
  step?: string;
  method: string;
  url: string;
  headers: Record<string, string>;
  body?: string;
  timeoutMs: number;
  maxResponseBytes: number;
}

export interface HttpResponse {
  status: number;
  /** Lower-case names. */
  headers: Record<string, string>;
  body: string;
  durationMs: number;
}

/** The only I/O the engine does. Network failures and timeouts reject with a RetryableError; any HTTP status resolves. */
export interface HttpClient {
  send(request: HttpRequest): Promise<HttpResponse>;
}

export interface NetworkPolicy {
  /**
   * Hosts (names or IP literals) that may be reached over plain http and may resolve to private, loopback or
   * link-local addresses. Everything else must be https to a public address (SSRF protection).
   */
  allowHosts?: readonly string[];
  /**
   * Resolves a host name to every address it has (default: the system resolver, dns.lookup). It is called when a
   * connection is made, and the connection goes to an address it returned after each one was checked.
   */
  resolveHost?: (hostname: string, family?: number) => Promise<dns.LookupAddress[]>;
}

/** Node's codes for a certificate that failed verification (self-signed, expired, wrong name, unknown issuer). */
const TLS_FAILURE = /CERT|SELF_SIGNED|UNABLE_TO_(GET|VERIFY)|ERR_TLS/;

function hasHeader(headers: Record<string, string>, name: string): boolean {
  return Object.keys(headers).some((k) => k.toLowerCase() === name);
}

/** A host name as the allow-list compares it: lower-case, an IPv6 literal without its brackets. */
function bareHost(host: string): string {
  return host.replace(/^\[|\]$/g, '').toLowerCase();
}

function allowSet(hosts: readonly string[] | undefined): Set<string> {
  return new Set((hosts ?? []).map(bareHost));
}

function hostOf(url: URL): string {
  return bareHost(url.hostname);
}

export class NetworkPolicyError extends PermanentError {
  constructor(message: string) {
    super('ERR_URL_FORBIDDEN', message);
  }
}

export class GotHttpClient implements HttpClient {
  private allow: Set<string>;
  private readonly agent = {
    http: new http.Agent({ keepAlive: true, maxSockets: 256, scheduling: 'lifo' }),
    https: new https.Agent({ keepAlive: true, maxSockets: 256, scheduling: 'lifo' }),
  };

  private readonly resolveHost: NonNullable<NetworkPolicy['resolveHost']>;

  constructor(policy: NetworkPolicy = {}) {
    this.allow = allowSet(policy.allowHosts);
    this.resolveHost = policy.resolveHost ?? ((hostname, family) => dns.promises.lookup(hostname, { all: true, family: family ?? 0 }));
  }

  /** Replaces the allow-list (the daemon's reload): requests from now on are checked against the new one. */
  setAllowHosts(hosts: readonly string[]): void {
    this.allow = allowSet(hosts);
  }

  /** Refuses a URL before any connection: plain http or a private IP literal not on the allow-list. */
  checkUrl(url: URL): void {
    const host = hostOf(url);
    if (this.allow.has(host)) return;
    if (url.protocol !== 'https:') throw new NetworkPolicyError(`${url.protocol}//${url.host} is not https and ${host} is not on the allow-list`);
    if (net.isIP(host) && isPrivateAddress(host)) throw new NetworkPolicyError(`${host} is a private address and not on the allow-list`);
  }

  // Checked at connect time, after DNS: a name that resolves (or re-resolves) to a private address is refused.
  private readonly lookup = (hostname: string, options: dns.LookupOptions, callback: (...args: any[]) => void): void => {
    const family = typeof options.family === 'number' ? options.family : undefined;
    this.resolveHost(hostname, family).then((addresses) => {
      const list = family ? addresses.filter((a) => a.family === family) : addresses;
      if (list.length === 0) return callback(Object.assign(new Error(`${hostname} has no address`), { code: 'ENOTFOUND' }));
      if (!this.allow.has(hostname.toLowerCase())) {
        const bad = list.find((a) => isPrivateAddress(a.address));
        if (bad) return callback(Object.assign(new Error(`${hostname} resolves to private address ${bad.address}`), { code: 'ERR_URL_FORBIDDEN' }));
      }
      if (options.all) return callback(null, list);
      callback(null, list[0].address, list[0].family);
    }, (err: unknown) => callback(err));
  };

  async send(req: HttpRequest): Promise<HttpResponse> {
    const url = new URL(req.url);
    this.checkUrl(url);
    const started = performance.now();
    const options: OptionsOfBufferResponseBody = {
      method: req.method as OptionsOfBufferResponseBody['method'],
      // Decompressed here, not by got, so the size cap applies to what the answer decompresses to.
      headers: hasHeader(req.headers, 'accept-encoding') ? req.headers : { ...req.headers, 'accept-encoding': ACCEPT_ENCODING },
      decompress: false,
      body: req.body,
      allowGetBody: true,
      agent: this.agent,
      // Explicit, so NODE_TLS_REJECT_UNAUTHORIZED=0 in the environment cannot turn verification off.
      https: { rejectUnauthorized: true },
      timeout: { request: req.timeoutMs },
      retry: { limit: 0 },
      throwHttpErrors: false,
      responseType: 'buffer',
      followRedirect: true,
      maxRedirects: 3,
      lookup: this.lookup as unknown as OptionsOfBufferResponseBody['lookup'],
      hooks: {
        beforeRedirect: [(next) => {
          const to = next.url as URL;
          if (to.host !== url.host) throw new NetworkPolicyError(`refusing a redirect from ${url.host} to another host (${to.host})`);
          this.checkUrl(to);
        }],
      },
    };
    const pending = got(url, options);
    let tooLarge = false;
    pending.on('response', (res: http.IncomingMessage) => {
      if (Number(res.headers['content-length']) > req.maxResponseBytes) { tooLarge = true; pending.cancel(); }
    });
    pending.on('downloadProgress', ({ transferred }) => {
      if (transferred > req.maxResponseBytes) { tooLarge = true; pending.cancel(); }
    });
    try {
      const res = await pending;
      const headers: Record<string, string> = {};
      for (const [k, v] of Object.entries(res.headers)) if (v !== undefined) headers[k.toLowerCase()] = Array.isArray(v) ? v.join(', ') : String(v);
      const body = decodeBody(res.body, headers['content-encoding'], req.maxResponseBytes);
      return { status: res.statusCode, headers, body: body.toString('utf8'), durationMs: performance.now() - started };
    } catch (err) {
      if (tooLarge) throw responseTooLarge(req.maxResponseBytes);
      if (err instanceof NetworkPolicyError || err instanceof SyncError) throw err;
      const e = err as RequestError;
      if ((e.code as string) === 'ERR_URL_FORBIDDEN' || (e.cause as NodeJS.ErrnoException | undefined)?.code === 'ERR_URL_FORBIDDEN') {
        throw new NetworkPolicyError(e.message);
      }
      if (e.name === 'TimeoutError' || e.code === 'ETIMEDOUT') throw new RetryableError('ERR_TIMEOUT', `no answer within ${req.timeoutMs} ms`, { cause: err });
      if (TLS_FAILURE.test(e.code ?? '')) {
        throw new RetryableError('ERR_TLS', `the TLS certificate of ${url.host} was not accepted: ${e.message} (${e.code}); certificates are always verified`, { cause: err });
      }
      throw new RetryableError('ERR_NETWORK', `network error: ${e.code ?? e.message}`, { cause: err });
    }
  }

  close(): void {
    this.agent.http.destroy();
    this.agent.https.destroy();
  }
}
