/**
 * A zero-latency CRM speaking the contract's defaults (CONTRACT.md) and nothing else: fetch finds nobody (404 Not
 * Found), create returns a new lead id, update answers success for any id. It does no validation and keeps no leads,
 * so it costs the benchmark as little as a server can. Optionally it enforces a fixed-window rate limit, answering 429
 * with Retry-After beyond it and sending its quota on every answer (X-RateLimit-Remaining, X-RateLimit-Reset in ms).
 */
import http, { type IncomingMessage, type ServerResponse } from 'node:http';
import type { AddressInfo } from 'node:net';

export interface StubCrmOptions {
  /** At most `requests` per `windowMs` (windows start at the first request). */
  rateLimit?: { requests: number; windowMs: number };
}

export interface StubCrmCounts {
  fetch: number;
  create: number;
  update: number;
  other: number;
  /** Answers that were 429. */
  tooMany: number;
}

const NOT_FOUND = JSON.stringify({ status: 'Not Found', reason: 'No matching lead' });

export class StubCrm {
  url = '';
  counts: StubCrmCounts = { fetch: 0, create: 0, update: 0, other: 0, tooMany: 0 };
  private readonly server: http.Server;
  private nextLead = 0;
  private windowStart = -1;
  private usedInWindow = 0;

  constructor(private readonly opts: StubCrmOptions = {}) {
    this.server = http.createServer({ keepAliveTimeout: 60_000 }, (req, res) => {
      // The body must be read for the connection to be reused; its content does not matter here.
      req.on('data', noop);
      req.on('end', () => this.answer(req, res));
    });
  }

  async start(): Promise<this> {
    await new Promise<void>((resolve) => this.server.listen(0, '127.0.0.1', resolve));
    this.url = `http://127.0.0.1:${(this.server.address() as AddressInfo).port}`;
    return this;
  }

  resetCounts(): void {
    this.counts = { fetch: 0, create: 0, update: 0, other: 0, tooMany: 0 };
  }

  calls(): number {
    const c = this.counts;
    return c.fetch + c.create + c.update + c.other;
  }

  close(): Promise<void> {
    return new Promise((resolve) => {
      this.server.close(() => resolve());
      this.server.closeAllConnections();
    });
  }

  private answer(req: IncomingMessage, res: ServerResponse): void {
    const url = req.url ?? '/';
    const quota = this.takeQuota();
    const route = url.startsWith('/crm/update/') ? 'update' : url.startsWith('/crm/fetch') ? 'fetch' : url.startsWith('/crm/create') ? 'create' : 'other';
    this.counts[route]++;
    if (quota && !quota.allowed) {
      this.counts.tooMany++;
      return send(res, 429, JSON.stringify({ status: 'Too Many Requests', reason: 'rate limit' }), { ...quota.headers, 'retry-after': String(Math.ceil(quota.resetMs / 1000)) });
    }
    const headers = quota?.headers ?? {};
    if (route === 'update') {
      const id = url.slice('/crm/update/'.length);
      return send(res, 200, `{"lead_id":${JSON.stringify(decodeURIComponent(id))},"status":"Successfully Updated"}`, headers);
    }
    if (route === 'fetch') return send(res, 404, NOT_FOUND, headers);
    if (route === 'create') return send(res, 200, `{"lead_id":"L${++this.nextLead}","status":"Successfully Created"}`, headers);
    send(res, 404, '{"status":"Failed","reason":"no such route"}', headers);
  }

  /** Counts a request against the current window; undefined when no limit is set. */
  private takeQuota(): { allowed: boolean; resetMs: number; headers: Record<string, string> } | undefined {
    const limit = this.opts.rateLimit;
    if (!limit) return undefined;
    const now = performance.now();
    if (this.windowStart < 0 || now - this.windowStart >= limit.windowMs) {
      this.windowStart = now;
      this.usedInWindow = 0;
    }
    const allowed = this.usedInWindow < limit.requests;
    if (allowed) this.usedInWindow++;
    const resetMs = Math.max(1, Math.ceil(this.windowStart + limit.windowMs - now));
    return {
      allowed, resetMs,
      headers: { 'x-ratelimit-limit': String(limit.requests), 'x-ratelimit-remaining': String(limit.requests - this.usedInWindow), 'x-ratelimit-reset': String(resetMs) },
    };
  }
}

function noop(): void {}

function send(res: ServerResponse, status: number, body: string, headers: Record<string, string>): void {
  res.writeHead(status, { 'content-type': 'application/json', 'content-length': Buffer.byteLength(body), ...headers });
  res.end(body);
}
