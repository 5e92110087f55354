import http, { type IncomingMessage, type ServerResponse } from 'node:http';
import type { StoreHealthReport } from '../daemon/store-health';
import { errorFields, type Logger } from '../log';
import type { Metrics } from '../metrics';
import { bearerMatches } from './auth';
import type { ApiBackend } from './backend';
import { parseEventBody, readBody, readJson, refuseContentEncoding } from './body';
import { HttpError } from './errors';
import { ingestEvents } from './ingest';
import { ClientRateLimiter } from './rate-limit';

export interface ApiServerOptions {
  backend: ApiBackend;
  /** Configured tenant names; a function is asked at every request (the daemon's tenants change on reload). */
  tenants: readonly string[] | (() => readonly string[]);
  /**
   * When set, every /v1 request needs `Authorization: Bearer <token>`. A function is asked at every request and gives
   * every token accepted (none: open), so the daemon can rotate tokens on reload.
   */
  ingestToken?: string | (() => readonly string[]);
  maxBodyBytes: number;
  /** /v1 requests a second per client address (bursts of as many); 0 or absent: no limit. Over it: 429 with Retry-After. */
  clientRequestsPerSecond?: number;
  metrics: Metrics;
  logger: Logger;
  /** The daemon is not draining. Ingest is refused (503) while it is. */
  isReady(): boolean;
  /**
   * Whether the store takes writes (/readyz answers 503 while it does not). Ingest is not refused for it: a batch
   * tried while the store fails gets its own 503, and one that works shows the store is back.
   */
  storeHealth?(): Promise<StoreHealthReport>;
  /** False while the store's connection is lost (Redis): a cheap look, with no probe write, for every API call. */
  storeReachable?(): boolean;
}

interface Reply {
  status: number;
  body: unknown;
  contentType?: string;
  headers?: Record<string, string>;
}

type Handler = (req: IncomingMessage, params: string[], url: URL) => Promise<Reply>;

interface Route {
  method: 'GET' | 'POST';
  pattern: RegExp;
  handler: Handler;
  /** /v1 routes need the ingest token (when one is configured); probes and metrics do not. */
  authenticated: boolean;
}

const json = (status: number, body: unknown): Reply => ({ status, body });

/** The daemon's HTTP API (docs/openapi.yaml). */
export function createApiServer(opts: ApiServerOptions): http.Server {
  const { backend, metrics, logger } = opts;
  const tenantsNow = (): readonly string[] => (typeof opts.tenants === 'function' ? opts.tenants() : opts.tenants);
  const limiter = opts.clientRequestsPerSecond ? new ClientRateLimiter(opts.clientRequestsPerSecond) : undefined;
  const knownTenant = (name: string): string => {
    if (!tenantsNow().includes(name)) throw new HttpError(404, 'ERR_UNKNOWN_TENANT', `unknown tenant ${JSON.stringify(name)}`);
    return name;
  };
  /**
   * Calls wait while the store's connection is lost (Redis): a status, or an ingest, answers 503 at once instead of
   * hanging (and an ingest's events queued in memory for the length of the outage, stored after its sender gave up).
   */
  const reachableStore = (what = 'ask again later') => {
    if (opts.storeReachable?.() === false) {
      throw new HttpError(503, 'ERR_STORE_UNAVAILABLE', `the store is unreachable (its connection is lost); ${what}`, undefined, { 'retry-after': '5' });
    }
  };
  const requireReady = () => {
    if (!opts.isReady()) throw new HttpError(503, 'ERR_NOT_READY', 'the daemon is shutting down; send the events again later');
  };
  const ingest = async (req: IncomingMessage, tenant?: string): Promise<Reply> => {
    requireReady();
    refuseContentEncoding(req);
    const events = parseEventBody(await readBody(req, opts.maxBodyBytes), req.headers['content-type']);
    reachableStore('nothing was stored: send the events again later');
    const { status, result } = await ingestEvents(events, tenant, { backend, tenants: tenantsNow(), metrics, logger });
    return json(status, result);
  };

  const routes: Route[] = [
    { method: 'GET', pattern: /^\/healthz$/, authenticated: false, handler: async () => json(200, { status: 'ok' }) },
    {
      method: 'GET', pattern: /^\/readyz$/, authenticated: false,
      handler: async () => {
        if (!opts.isReady()) return json(503, { status: 'not ready', reason: 'draining' });
        const store = opts.storeHealth ? await opts.storeHealth() : { up: true };
        if (!store.up) return json(503, { status: 'not ready', reason: 'store', store });
        return json(200, { status: 'ready' });
      },
    },
    {
      method: 'GET', pattern: /^\/metrics$/, authenticated: false,
      handler: async () => {
        const m = await metrics.render();
        return { status: 200, body: m.body, contentType: m.contentType };
      },
    },
    { method: 'POST', pattern: /^\/v1\/events$/, authenticated: true, handler: (req) => ingest(req) },
    { method: 'POST', pattern: /^\/v1\/tenants\/([^/]+)\/events$/, authenticated: true, handler: (req, [t]) => ingest(req, knownTenant(t)) },
    { method: 'GET', pattern: /^\/v1\/status$/, authenticated: true, handler: async () => { reachableStore(); return json(200, await backend.status()); } },
    {
      method: 'GET', pattern: /^\/v1\/tenants\/([^/]+)\/contacts\/([^/]+)$/, authenticated: true,
      handler: async (_req, [t, id]) => {
        const tenant = knownTenant(t);
        reachableStore();
        const contact = await backend.contact(tenant, id);
        if (!contact) throw new HttpError(404, 'ERR_UNKNOWN_CONTACT', `tenant ${t} has no contact ${JSON.stringify(id)}`);
        return json(200, contact);
      },
    },
    {
      method: 'GET', pattern: /^\/v1\/dead-letters$/, authenticated: true,
      handler: async (_req, _p, url) => {
        const tenant = url.searchParams.get('tenant') || undefined;
        return json(200, { deadLetters: await backend.deadLetters(tenant === undefined ? undefined : knownTenant(tenant)) });
      },
    },
    {
      method: 'POST', pattern: /^\/v1\/tenants\/([^/]+)\/resync$/, authenticated: true,
      handler: async (req, [t]) => {
        const tenant = knownTenant(t);
        const { contactIds, perSecond } = resyncRequest(await readJson(req, opts.maxBodyBytes));
        return json(200, { resynced: await backend.resync(tenant, contactIds, perSecond === undefined ? {} : { perSecond }) });
      },
    },
    {
      method: 'POST', pattern: /^\/v1\/dead-letters\/replay$/, authenticated: true,
      handler: async (req) => {
        const { tenants, contactId } = replayRequest(await readJson(req, opts.maxBodyBytes), knownTenant, tenantsNow());
        let replayed = 0;
        for (const t of tenants) replayed += await backend.replay(t, contactId);
        return json(200, { replayed });
      },
    },
  ];

  const dispatch = async (req: IncomingMessage): Promise<Reply> => {
    const url = new URL(req.url ?? '/', 'http://localhost');
    const matching = routes.map((r) => ({ r, m: r.pattern.exec(url.pathname) })).filter((x) => x.m);
    if (matching.length === 0) throw new HttpError(404, 'ERR_NOT_FOUND', `no route ${url.pathname}`);
    const hit = matching.find((x) => x.r.method === req.method);
    if (!hit) {
      const allowed = [...new Set(matching.map((x) => x.r.method))].join(', ');
      throw new HttpError(405, 'ERR_METHOD_NOT_ALLOWED', `${url.pathname} accepts ${allowed}`, undefined, { allow: allowed });
    }
    // Counted before the token is checked, so guessing tokens is limited too. Probes and metrics are not limited.
    const waitMs = hit.r.authenticated ? limiter?.take(req.socket.remoteAddress ?? 'unknown') ?? 0 : 0;
    if (waitMs > 0) {
      throw new HttpError(429, 'ERR_RATE_LIMITED', `more than ${opts.clientRequestsPerSecond} requests a second from this address; retry after ${Math.ceil(waitMs / 1000)} s`,
        undefined, { 'retry-after': String(Math.ceil(waitMs / 1000)) });
    }
    const tokens = typeof opts.ingestToken === 'function' ? opts.ingestToken() : opts.ingestToken === undefined ? [] : [opts.ingestToken];
    // Every token is compared (no early exit), so the time taken does not tell which one nearly matched.
    if (hit.r.authenticated && tokens.length > 0 && !tokens.map((t) => bearerMatches(req.headers.authorization, t)).some(Boolean)) {
      throw new HttpError(401, 'ERR_UNAUTHORIZED', 'missing or wrong Authorization: Bearer <ingest token>', undefined, { 'www-authenticate': 'Bearer realm="crm-sync"' });
    }
    let params: string[];
    try {
      params = hit.m!.slice(1).map(decodeURIComponent);
    } catch {
      throw new HttpError(400, 'ERR_BAD_PATH', 'the path is not valid percent-encoding');
    }
    return hit.r.handler(req, params, url);
  };

  return http.createServer((req, res) => {
    const started = performance.now();
    dispatch(req).then(
      (reply) => send(res, reply),
      (err: unknown) => {
        if (err instanceof HttpError) return send(res, { ...json(err.status, err.toJSON()), headers: err.headers });
        logger.error({ err: errorFields(err), method: req.method, ...loggedTarget(req.url) }, 'request failed');
        send(res, json(500, { error: { code: 'ERR_INTERNAL', message: 'internal error; see the daemon log' } }));
      },
    ).finally(() => {
      logger.debug({ method: req.method, ...loggedTarget(req.url), status: res.statusCode, ms: Math.round(performance.now() - started) }, 'request');
    });
  });
}

/** Query parameters the API reads, logged by name; any other is counted only (`?<token>` would be its "name"). */
const LOGGED_QUERY_NAMES = new Set(['tenant']);

/**
 * A request's target as logged: the path, and its query without any value: the names of the parameters the API
 * reads, and how many others. A client may put anything in a query (a token it should have sent as a header).
 */
export function loggedTarget(target: string | undefined): { path: string; query?: string[]; otherQueryParams?: number } {
  const raw = target ?? '';
  const at = raw.indexOf('?');
  if (at < 0) return { path: raw };
  const names = [...new URLSearchParams(raw.slice(at + 1)).keys()];
  const known = [...new Set(names.filter((n) => LOGGED_QUERY_NAMES.has(n)))];
  const others = names.filter((n) => !LOGGED_QUERY_NAMES.has(n)).length;
  return { path: raw.slice(0, at), ...(known.length > 0 ? { query: known } : {}), ...(others > 0 ? { otherQueryParams: others } : {}) };
}

function replayRequest(body: unknown, knownTenant: (t: string) => string, all: readonly string[]): { tenants: string[]; contactId: string | 'all' } {
  const b = (typeof body === 'object' && body !== null ? body : {}) as Record<string, unknown>;
  const tenant = typeof b.tenant === 'string' && b.tenant ? knownTenant(b.tenant) : undefined;
  if (b.all !== undefined && typeof b.all !== 'boolean') {
    throw new HttpError(400, 'ERR_BAD_REQUEST', '"all" is true or false', [{ field: 'all', message: `must be a boolean, got ${JSON.stringify(b.all)?.slice(0, 40)}` }]);
  }
  if (b.all === true) return { tenants: tenant ? [tenant] : [...all], contactId: 'all' };
  if (tenant && typeof b.contactId === 'string' && b.contactId) return { tenants: [tenant], contactId: b.contactId };
  throw new HttpError(400, 'ERR_BAD_REQUEST', 'send {"tenant": "...", "contactId": "..."}, {"tenant": "...", "all": true} or {"all": true}',
    [{ field: tenant ? 'contactId' : 'tenant', message: 'is required unless "all" is true' }]);
}

/** Contact ids one resync request may name (a whole tenant: "all"). */
const MAX_RESYNC_IDS = 10_000;

function resyncRequest(body: unknown): { contactIds: string[] | 'all'; perSecond?: number } {
  const b = (typeof body === 'object' && body !== null && !Array.isArray(body) ? body : {}) as Record<string, unknown>;
  const errors: Array<{ field: string; message: string }> = [];
  let perSecond: number | undefined;
  if (b.perSecond !== undefined) {
    if (typeof b.perSecond === 'number' && Number.isFinite(b.perSecond) && b.perSecond > 0 && b.perSecond <= 10_000) perSecond = b.perSecond;
    else errors.push({ field: 'perSecond', message: 'must be a number above 0, at most 10000' });
  }
  let contactIds: string[] | 'all' | undefined;
  if (b.all === true && b.contactIds === undefined) contactIds = 'all';
  else if (b.all !== undefined && b.all !== false) errors.push({ field: 'all', message: 'must be true, without contactIds' });
  else if (!Array.isArray(b.contactIds) || b.contactIds.length === 0 || b.contactIds.length > MAX_RESYNC_IDS) {
    errors.push({ field: 'contactIds', message: `must be a list of 1 to ${MAX_RESYNC_IDS} contact ids, unless "all" is true` });
  } else {
    const bad = b.contactIds.findIndex((id) => typeof id !== 'string' || id === '' || id.length > 256);
    if (bad >= 0) errors.push({ field: `contactIds[${bad}]`, message: 'must be a contact id (a string of 1 to 256 characters)' });
    else contactIds = b.contactIds as string[];
  }
  if (errors.length > 0 || contactIds === undefined) {
    throw new HttpError(400, 'ERR_BAD_REQUEST', 'send {"contactIds": ["..."]} or {"all": true}, optionally with "perSecond"', errors);
  }
  return perSecond === undefined ? { contactIds } : { contactIds, perSecond };
}

function send(res: ServerResponse, reply: Reply): void {
  if (res.headersSent) return;
  const text = typeof reply.body === 'string' ? reply.body : JSON.stringify(reply.body);
  res.writeHead(reply.status, {
    'content-type': reply.contentType ?? 'application/json; charset=utf-8',
    'content-length': Buffer.byteLength(text),
    'cache-control': 'no-store',
    ...reply.headers,
  });
  res.end(text);
}
