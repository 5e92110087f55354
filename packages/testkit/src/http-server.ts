import http, { type IncomingMessage, type ServerResponse } from 'node:http';
import type { AddressInfo } from 'node:net';
import { timingSafeEqual } from 'node:crypto';
import { readBody, type RawBody } from './reference-crm/body';
import type { LoggedRequest } from './reference-crm/types';

/** What the testkit's servers (the reference CRM, the vendor emulators) share: lifecycle, JSON replies, secrets. */

export interface JsonReply {
  status: number;
  /** undefined: no body at all (e.g. a 204). */
  body?: unknown;
  headers?: Record<string, string>;
  /** Default 'application/json; charset=utf-8'. */
  contentType?: string;
}

/**
 * A node:http server on a free port whose close() also ends keep-alive and hung sockets and the timers of delayed
 * answers, so a test's afterEach never waits on a fault.
 */
export class TestServer {
  url = '';
  port = 0;
  closed = false;
  private readonly server: http.Server;
  private readonly timers = new Set<NodeJS.Timeout>();

  constructor(handle: (req: IncomingMessage, res: ServerResponse) => Promise<void>, onError: (res: ServerResponse, err: unknown) => void) {
    this.server = http.createServer((req, res) => {
      handle(req, res).catch((err: unknown) => onError(res, err));
    });
  }

  /** Resolves once listening; `url` is then `http://host:port` plus `basePath`. */
  listen(host: string, port: number, basePath = ''): Promise<void> {
    return new Promise((resolve, reject) => {
      this.server.once('error', reject);
      this.server.listen(port, host, () => {
        this.server.off('error', reject);
        this.port = (this.server.address() as AddressInfo).port;
        this.url = `http://${host.includes(':') ? `[${host}]` : host}:${this.port}${basePath}`;
        resolve();
      });
    });
  }

  delay(ms: number): Promise<void> {
    return new Promise((resolve) => {
      const t = setTimeout(() => {
        this.timers.delete(t);
        resolve();
      }, ms);
      this.timers.add(t);
    });
  }

  close(): Promise<void> {
    if (this.closed) return Promise.resolve();
    this.closed = true;
    for (const t of this.timers) clearTimeout(t);
    this.timers.clear();
    return new Promise((resolve) => {
      this.server.close(() => resolve());
      // Keep-alive and hung sockets would otherwise hold close() open.
      this.server.closeAllConnections();
    });
  }
}

/** Fills in a log entry's status when the answer is sent, and its duration when it is sent or the socket closes. */
export function trackRequest(entry: LoggedRequest, res: ServerResponse, started: number): void {
  const stop = () => {
    if (entry.durationMs === 0) entry.durationMs = Math.round((performance.now() - started) * 1000) / 1000;
  };
  res.on('finish', () => {
    entry.status = res.statusCode;
    stop();
  });
  res.on('close', stop);
}

export function sendJson(res: ServerResponse, reply: JsonReply): void {
  if (res.headersSent || res.destroyed) return;
  if (reply.body === undefined) {
    res.writeHead(reply.status, { ...reply.headers });
    res.end();
    return;
  }
  const text = JSON.stringify(reply.body);
  res.writeHead(reply.status, {
    'content-type': reply.contentType ?? 'application/json; charset=utf-8',
    'content-length': String(Buffer.byteLength(text)),
    ...reply.headers,
  });
  res.end(text);
}

/** Constant-time comparison of a presented secret with the one the server accepts. */
export function sameSecret(given: unknown, expected: string): boolean {
  if (typeof given !== 'string') return false;
  const a = Buffer.from(given);
  const b = Buffer.from(expected);
  return a.length === b.length && timingSafeEqual(a, b);
}

/** A request as the testkit's CRM servers first read it: when it arrived, its URL and method, its body (capped). */
export interface ArrivedRequest {
  /** performance.now() at arrival, for the log entry's duration. */
  started: number;
  at: string;
  url: URL;
  method: string;
  raw: RawBody;
}

/** Reads a request's body (at most maxBytes kept); undefined when the client went away mid-body: nobody to answer. */
export async function arrive(req: IncomingMessage, maxBytes: number): Promise<ArrivedRequest | undefined> {
  const started = performance.now();
  const at = new Date().toISOString();
  const url = new URL(req.url ?? '/', 'http://testkit.invalid');
  const method = (req.method ?? 'GET').toUpperCase();
  try {
    return { started, at, url, method, raw: await readBody(req, maxBytes) };
  } catch {
    return undefined;
  }
}

/** The requests a testkit server received, numbered in arrival order; each entry's status and duration filled in when answered. */
export class RequestLog {
  private entries: LoggedRequest[] = [];
  private seq = 0;

  /** Logs a request (secrets already masked by the caller) and follows its answer on `res`. */
  add(entry: Omit<LoggedRequest, 'seq' | 'at' | 'status' | 'durationMs'>, arrived: ArrivedRequest, res: ServerResponse): LoggedRequest {
    const logged: LoggedRequest = { seq: ++this.seq, at: arrived.at, ...entry, status: 0, durationMs: 0 };
    this.entries.push(logged);
    trackRequest(logged, res, arrived.started);
    return logged;
  }

  /** Copies, in arrival order. */
  all(): LoggedRequest[] {
    return this.entries.map((r) => structuredClone(r));
  }

  reset(): void {
    this.entries = [];
    this.seq = 0;
  }
}
