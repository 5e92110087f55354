import { SyncError } from '@crm-sync/core';
import type { ContactStatus, DeadLetter, IngestResult, StatusCounts } from '../api';

export const DEFAULT_DAEMON_URL = 'http://127.0.0.1:8080';
const RATE_LIMIT_ATTEMPTS = 5;
/** A store outage (503 with Retry-After: 5, a Redis whose connection is lost) is waited through for about a minute. */
const STORE_OUTAGE_ATTEMPTS = 12;

/** The daemon could not be reached, or answered with an error. `status` 0: no answer at all. */
export class DaemonRequestError extends SyncError {
  constructor(code: string, message: string, readonly status: number, readonly body?: unknown) {
    super(code, message, { retryable: status === 0 || status === 503 });
  }
}

/** A small client for the daemon's HTTP API (docs/openapi.yaml), used by the CLI, the demo and the tests. */
export class DaemonClient {
  private readonly base: string;

  constructor(url: string, private readonly token?: string) {
    this.base = url.replace(/\/+$/, '');
  }

  /** Posts events (a JSON array); resolves with the answer for 202 and for 400 (all rejected) alike. */
  async ingest(events: unknown[], tenant?: string): Promise<IngestResult> {
    const path = tenant ? `/v1/tenants/${encodeURIComponent(tenant)}/events` : '/v1/events';
    return this.request<IngestResult>('POST', path, events, (status, body) => status === 400 && isIngestResult(body), true);
  }

  status(): Promise<StatusCounts> {
    return this.request('GET', '/v1/status');
  }

  /** undefined when the daemon does not know the contact. */
  async contact(tenant: string, contactId: string): Promise<ContactStatus | undefined> {
    try {
      return await this.request<ContactStatus>('GET', `/v1/tenants/${encodeURIComponent(tenant)}/contacts/${encodeURIComponent(contactId)}`);
    } catch (err) {
      if (err instanceof DaemonRequestError && err.code === 'ERR_UNKNOWN_CONTACT') return undefined;
      throw err;
    }
  }

  async deadLetters(tenant?: string): Promise<DeadLetter[]> {
    const q = tenant ? `?tenant=${encodeURIComponent(tenant)}` : '';
    return (await this.request<{ deadLetters: DeadLetter[] }>('GET', `/v1/dead-letters${q}`)).deadLetters;
  }

  /** Marks contacts of a tenant to be sent again even if unchanged (POST /v1/tenants/{t}/resync); resolves to how many. */
  async resync(tenant: string, target: { contactIds: string[] } | { all: true }, perSecond?: number): Promise<number> {
    const body = perSecond === undefined ? target : { ...target, perSecond };
    return (await this.request<{ resynced: number }>('POST', `/v1/tenants/${encodeURIComponent(tenant)}/resync`, body)).resynced;
  }

  async replay(target: { tenant: string; contactId: string } | { tenant?: string; all: true }): Promise<number> {
    return (await this.request<{ replayed: number }>('POST', '/v1/dead-letters/replay', target)).replayed;
  }

  /** Polls /v1/status until nothing is pending, in flight or retrying; a store unreachable for a while is waited through. */
  async waitUntilIdle(opts: { timeoutMs: number; intervalMs?: number }): Promise<StatusCounts> {
    const deadline = Date.now() + opts.timeoutMs;
    for (;;) {
      let s: StatusCounts | undefined;
      try {
        s = await this.status();
      } catch (err) {
        if (!(err instanceof DaemonRequestError && err.code === 'ERR_STORE_UNAVAILABLE') || Date.now() > deadline) throw err;
      }
      if (s && s.pending === 0 && s.inFlight === 0 && s.retrying === 0) return s;
      if (s && Date.now() > deadline) {
        throw new DaemonRequestError('ERR_NOT_IDLE', `the daemon is not idle after ${opts.timeoutMs} ms (pending ${s.pending}, in flight ${s.inFlight}, retrying ${s.retrying})`, 200, s);
      }
      await new Promise((r) => setTimeout(r, opts.intervalMs ?? 100));
    }
  }

  /** `waitOutage`: a 503 with Retry-After (nothing stored, the store unreachable) is sent again as told (ingest). */
  private async request<T>(method: string, path: string, body?: unknown, acceptError?: (status: number, body: unknown) => boolean, waitOutage = false): Promise<T> {
    const headers: Record<string, string> = { accept: 'application/json' };
    if (body !== undefined) headers['content-type'] = 'application/json';
    if (this.token) headers.authorization = `Bearer ${this.token}`;
    const text = body === undefined ? undefined : JSON.stringify(body);
    let res: Response;
    for (let attempt = 1; ; attempt++) {
      try {
        res = await fetch(this.base + path, { method, headers, body: text });
      } catch (err) {
        const cause = (err as { cause?: { code?: string; message?: string } }).cause;
        throw new DaemonRequestError('ERR_DAEMON_UNREACHABLE', `cannot reach the daemon at ${this.base} (${cause?.code ?? cause?.message ?? (err as Error).message}); is \`crm-sync run\` running there?`, 0);
      }
      // The daemon limits requests per client (429 with Retry-After), and refuses what it cannot store while its store
      // is unreachable (503 with Retry-After: nothing was stored): wait as asked, a few times, before giving up.
      const waitable = res.status === 429 ? attempt < RATE_LIMIT_ATTEMPTS : waitOutage && res.status === 503 && res.headers.has('retry-after') && attempt < STORE_OUTAGE_ATTEMPTS;
      if (!waitable) break;
      await res.arrayBuffer();
      await new Promise((r) => setTimeout(r, Math.min(Number(res.headers.get('retry-after')) || 1, 10) * 1000));
    }
    const answer = await res.text();
    let parsed: unknown;
    try {
      parsed = answer ? JSON.parse(answer) : undefined;
    } catch {
      parsed = answer;
    }
    if (res.ok || acceptError?.(res.status, parsed)) return parsed as T;
    const error = (parsed as { error?: { code?: string; message?: string } } | undefined)?.error;
    throw new DaemonRequestError(error?.code ?? `ERR_HTTP_${res.status}`, `${method} ${path}: ${res.status} ${error?.message ?? res.statusText}`, res.status, parsed);
  }
}

function isIngestResult(body: unknown): body is IngestResult {
  return typeof body === 'object' && body !== null && Array.isArray((body as IngestResult).rejected);
}
