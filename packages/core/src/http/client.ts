import dns from 'node:dns';
import http from 'node:http';
import https from 'node:https';
import net from 'node:net';
import got, { type OptionsOfBufferResponseBody, RequestError } from 'got';
import { PermanentError, RetryableError } from '../errors';

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
}

const PRIVATE = new net.BlockList();
for (const [a, p] of [['0.0.0.0', 8], ['10.0.0.0', 8], ['100.64.0.0', 10], ['127.0.0.0', 8], ['169.254.0.0', 16], ['172.16.0.0', 12],
  ['192.0.0.0', 24], ['192.168.0.0', 16], ['198.18.0.0', 15], ['224.0.0.0', 4], ['240.0.0.0', 4]] as const) PRIVATE.addSubnet(a, p, 'ipv4');
for (const [a, p] of [['::', 128], ['::1', 128], ['fc00::', 7], ['fe80::', 10], ['ff00::', 8]] as const) PRIVATE.addSubnet(a, p, 'ipv6');

/** True for loopback, private, link-local (cloud metadata), CGNAT, multicast and reserved addresses. */
export function isPrivateAddress(address: string): boolean {
  const family = net.isIP(address);
  if (family === 4) return PRIVATE.check(address, 'ipv4');
  if (family === 6) {
    const mapped = /^::ffff:(\d+\.\d+\.\d+\.\d+)$/i.exec(address);
    return mapped ? PRIVATE.check(mapped[1], 'ipv4') : PRIVATE.check(address, 'ipv6');
  }
  return true;
}

function hostOf(url: URL): string {
  return url.hostname.replace(/^\[|\]$/g, '').toLowerCase();
}

export class NetworkPolicyError extends PermanentError {
  constructor(message: string) {
    super('ERR_URL_FORBIDDEN', message);
  }
}

export class GotHttpClient implements HttpClient {
  private readonly allow: Set<string>;
  private readonly agent = {
    http: new http.Agent({ keepAlive: true, maxSockets: 256, scheduling: 'lifo' }),
    https: new https.Agent({ keepAlive: true, maxSockets: 256, scheduling: 'lifo' }),
  };

  constructor(policy: NetworkPolicy = {}) {
    this.allow = new Set((policy.allowHosts ?? []).map((h) => h.replace(/^\[|\]$/g, '').toLowerCase()));
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
    dns.lookup(hostname, { ...options, all: true }, (err, addresses) => {
      if (err) return callback(err);
      const list = addresses as dns.LookupAddress[];
      if (!this.allow.has(hostname.toLowerCase())) {
        const bad = list.find((a) => isPrivateAddress(a.address));
        if (bad) return callback(Object.assign(new Error(`${hostname} resolves to private address ${bad.address}`), { code: 'ERR_URL_FORBIDDEN' }));
      }
      if (options.all) return callback(null, list);
      callback(null, list[0].address, list[0].family);
    });
  };

  async send(req: HttpRequest): Promise<HttpResponse> {
    const url = new URL(req.url);
    this.checkUrl(url);
    const started = performance.now();
    const options: OptionsOfBufferResponseBody = {
      method: req.method as OptionsOfBufferResponseBody['method'],
      headers: req.headers,
      body: req.body,
      allowGetBody: true,
      agent: this.agent,
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
    pending.on('downloadProgress', ({ transferred }) => {
      if (transferred > req.maxResponseBytes) { tooLarge = true; pending.cancel(); }
    });
    try {
      const res = await pending;
      const headers: Record<string, string> = {};
      for (const [k, v] of Object.entries(res.headers)) if (v !== undefined) headers[k.toLowerCase()] = Array.isArray(v) ? v.join(', ') : String(v);
      return { status: res.statusCode, headers, body: res.body.toString('utf8'), durationMs: performance.now() - started };
    } catch (err) {
      if (tooLarge) throw new PermanentError('ERR_RESPONSE_TOO_LARGE', `the answer was larger than ${req.maxResponseBytes} bytes`);
      if (err instanceof NetworkPolicyError) throw err;
      const e = err as RequestError;
      if ((e.code as string) === 'ERR_URL_FORBIDDEN' || (e.cause as NodeJS.ErrnoException | undefined)?.code === 'ERR_URL_FORBIDDEN') {
        throw new NetworkPolicyError(e.message);
      }
      if (e.name === 'TimeoutError' || e.code === 'ETIMEDOUT') throw new RetryableError('ERR_TIMEOUT', `no answer within ${req.timeoutMs} ms`, { cause: err });
      throw new RetryableError('ERR_NETWORK', `network error: ${e.code ?? e.message}`, { cause: err });
    }
  }

  close(): void {
    this.agent.http.destroy();
    this.agent.https.destroy();
  }
}
