import type { IncomingMessage, ServerResponse } from 'node:http';
import { maskSecrets } from '@crm-sync/core';
import { CrmServer } from '../crm-server';
import { arrive, sendJson as send, type JsonReply } from '../http-server';
import { parseBody, type ParsedBody } from '../reference-crm/body';
import { playFault } from '../reference-crm/faults';
import type { CrmRoute, CrmTestServer } from '../reference-crm/types';

/**
 * The shared base of the vendor emulators: server lifecycle, body parsing, the request log (secrets masked) and fault
 * injection (the reference CRM's faults, answered in the vendor's own error shape). A vendor module supplies only its
 * routes, its behaviour and its error bodies (a `VendorApi`).
 */

export interface EmulatorOptions {
  /** Default '127.0.0.1'. */
  host?: string;
  /** Default 0: a random free port. */
  port?: number;
  /** The secret the emulator accepts; each vendor has a default. */
  token?: string;
  /** The emulator's clock (ms since the epoch), for search lag and rate windows. Default Date.now. */
  now?: () => number;
  /** Seed of the PRNG deciding `rate`-limited faults. */
  seed?: number;
  /** Default 1 MiB; larger bodies are refused in the vendor's error shape (413). */
  maxBodyBytes?: number;
}

/** The API every emulator has, so tests and `crm-sync verify` treat them alike. */
export interface Emulator<R = Record<string, unknown>> extends CrmTestServer {
  /** The secret this emulator accepts. */
  readonly token: string;
  /** Copies of the stored records, shaped as the vendor's API returns them, in creation order (deleted ones left out). */
  records(): R[];
  /** Deletes a record the way the vendor does; later updates of its id answer the vendor's "not found". */
  deleteRecord(id: string): boolean;
}

export interface EmulatorRequest {
  route: CrmRoute;
  method: string;
  /** Path parameters the route captured (decoded), e.g. { id: '123' }. */
  params: Record<string, string>;
  query: URLSearchParams;
  headers: IncomingMessage['headers'];
  contentType: string;
  body: ParsedBody;
}

export type Reply = JsonReply;

export interface RouteMatch {
  route: CrmRoute;
  params?: Record<string, string>;
}

/** What a vendor module supplies to the base. */
export interface VendorApi<R> {
  /** The credential the vendor accepts (the emulator's `token`). */
  readonly token: string;
  /** Which logical route a request is, or undefined for a path the vendor does not serve. */
  match(method: string, url: URL): RouteMatch | undefined;
  handle(req: EmulatorRequest): Reply;
  /** The vendor's answer to a path it does not serve. */
  unknownRoute(method: string, path: string): Reply;
  /** The vendor's failure body for a status (injected faults, oversized bodies); status 200 for `failInBody`. */
  failure(route: CrmRoute | 'unknown', status: number, message: string): Reply;
  records(): R[];
  deleteRecord(id: string): boolean;
  reset(): void;
}

export async function startEmulator<R>(vendor: VendorApi<R>, opts: EmulatorOptions): Promise<EmulatorServer<R>> {
  const server = new EmulatorServer(vendor, opts);
  await server.listen(opts.host ?? '127.0.0.1', opts.port ?? 0);
  return server;
}

export class EmulatorServer<R> extends CrmServer implements Emulator<R> {
  private readonly maxBodyBytes: number;

  readonly token: string;

  constructor(private readonly vendor: VendorApi<R>, opts: EmulatorOptions) {
    super(opts.seed ?? 0x5eed, (err) => vendor.failure('unknown', 500, String(err)));
    this.maxBodyBytes = opts.maxBodyBytes ?? 1024 * 1024;
    this.token = vendor.token;
  }

  listen(host: string, port: number): Promise<void> {
    return this.server.listen(host, port);
  }

  records(): R[] {
    return this.vendor.records();
  }

  deleteRecord(id: string): boolean {
    return this.vendor.deleteRecord(id);
  }

  protected resetRecords(): void {
    this.vendor.reset();
  }

  protected async handle(req: IncomingMessage, res: ServerResponse): Promise<void> {
    const arrived = await arrive(req, this.maxBodyBytes);
    if (!arrived) return;
    const { url, method, raw } = arrived;
    const matched = this.vendor.match(method, url);
    const route = matched?.route ?? 'unknown';
    const contentType = (req.headers['content-type'] ?? '').split(';')[0]!.trim().toLowerCase();
    const body = raw.tooLarge ? undefined : parseBody(raw.buf, contentType);
    this.log.add({
      route, method,
      path: this.mask(url.pathname),
      query: Object.fromEntries([...url.searchParams].map(([k, v]) => [k, this.mask(v)])),
      headers: Object.fromEntries(Object.entries(req.headers).filter(([, v]) => v !== undefined)
        .map(([k, v]) => [k, this.mask(Array.isArray(v) ? v.join(', ') : v!)])),
      body: !body ? null : body.ok ? JSON.parse(this.mask(JSON.stringify(body.value))) : this.mask(body.raw),
    }, arrived, res);

    const fault = this.faults.take(route);
    if (await playFault(fault, { server: this.server, req, res, failure: (status) => this.vendor.failure(route, status, 'injected fault') })) return;

    let reply: Reply;
    if (!matched) reply = this.vendor.unknownRoute(method, url.pathname);
    else if (!body) reply = this.vendor.failure(route, 413, `body larger than ${this.maxBodyBytes} bytes`);
    else {
      reply = this.vendor.handle({
        route: matched.route, method, params: matched.params ?? {}, query: url.searchParams, headers: req.headers, contentType, body,
      });
    }
    if (fault?.resetAfterCommit) return void req.socket.destroy();
    send(res, reply);
  }

  private mask(text: string): string {
    return maskSecrets(text, [this.token]);
  }
}

export { sameSecret } from '../http-server';

export function header(req: EmulatorRequest, name: string): string | undefined {
  const v = req.headers[name.toLowerCase()];
  return Array.isArray(v) ? v[0] : v;
}

/** The token after a scheme word in the Authorization header (`Bearer x`, `Zoho-oauthtoken x`). */
export function authorizationToken(req: EmulatorRequest, scheme: string): string | undefined {
  const m = /^(\S+)\s+(.+)$/.exec(header(req, 'authorization') ?? '');
  return m && m[1]!.toLowerCase() === scheme.toLowerCase() ? m[2]!.trim() : undefined;
}

/**
 * A fixed request window (HubSpot's "100 per 10 s", Pipedrive's "80 per 2 s"): `hit()` counts a request and says
 * how many are left and when the window ends.
 */
export class RateWindow {
  private start = 0;
  private used = 0;

  constructor(readonly max: number, readonly intervalMs: number, private readonly now: () => number) {}

  hit(): { allowed: boolean; remaining: number; resetMs: number } {
    const t = this.now();
    if (t - this.start >= this.intervalMs) {
      this.start = t;
      this.used = 0;
    }
    this.used++;
    return { allowed: this.used <= this.max, remaining: Math.max(0, this.max - this.used), resetMs: this.start + this.intervalMs - t };
  }

  reset(): void {
    this.start = 0;
    this.used = 0;
  }
}

/** A path's segments after a prefix, decoded; undefined when the path is not under the prefix or a segment is malformed. */
export function segmentsAfter(path: string, prefix: string): string[] | undefined {
  if (path !== prefix && !path.startsWith(`${prefix}/`)) return undefined;
  try {
    return path.slice(prefix.length).split('/').filter((s) => s !== '').map(decodeURIComponent);
  } catch {
    return undefined;
  }
}

/** Vendor timestamps: the ISO form most APIs use. */
export function isoTime(ms: number): string {
  return new Date(ms).toISOString();
}
