export type CrmRoute = 'create' | 'fetch' | 'update' | 'upsert';

export type ReferenceCrmAuth =
  | {
      style: 'auth-key' | 'bearer' | 'body-secret';
      key: string;
      /** auth-key only; default 'Auth-Key'. */
      header?: string;
      /** body-secret only: body field or query parameter carrying the secret; default 'secret'. */
      field?: string;
    }
  | {
      /**
       * Signed requests: `X-Signature: sha256=<hex HMAC-SHA256(key, "<timestamp>.<METHOD>.<path?query>.<body>")>` with
       * the Unix time in `X-Timestamp`, at most `maxSkewSec` (default 300) away from the server's clock.
       */
      style: 'hmac';
      key: string;
      /** Default 'X-Signature'. */
      header?: string;
      /** Default 'X-Timestamp'. */
      timestampHeader?: string;
      maxSkewSec?: number;
    }
  | {
      /** HTTP Basic (RFC 7617): `Authorization: Basic base64(<user>:<key>)`. */
      style: 'basic';
      key: string;
      /** Default 'crm-sync'. */
      user?: string;
    }
  | { style: 'none' };

export interface ReferenceCrmOptions {
  /** Default '127.0.0.1'. */
  host?: string;
  /** Default 0: a random free port. */
  port?: number;
  /** Default { style: 'auth-key', key: 'test-key' }. */
  auth?: ReferenceCrmAuth;
  /** Default true: GET /crm/fetch (query or body) and POST /crm/fetch. */
  fetch?: boolean;
  /** Default false: POST /crm/upsert. */
  upsert?: boolean;
  /**
   * Default false: create always makes a new lead, so tests can detect duplicates.
   * When true, a create whose phone/email matches a lead updates and returns that lead
   * (what a CRM without a Fetch endpoint has to do).
   */
  dedupeOnCreate?: boolean;
  /** Default '': routes are served at `${basePath}/crm/create` etc. */
  basePath?: string;
  /** Default 1 MiB; larger bodies get 413. */
  maxBodyBytes?: number;
  /** Seed of the PRNG deciding `rate`-limited faults. */
  seed?: number;
  /**
   * Default 0. Search lag: fetch does not see a lead until this many ms after its creation, as a CRM whose search
   * index trails its writes. Create, update and upsert see every lead at once.
   */
  fetchLagMs?: number;
  /** Default 'L' (ids like L000001). A prefix such as 'ld/' makes ids that need URL-encoding. */
  leadIdPrefix?: string;
}

export interface Lead {
  lead_id: string;
  phone: string;
  name: string;
  email?: string;
  custom_fields: Record<string, unknown>;
  created_at: string;
  updated_at: string;
  version: number;
}

export interface LoggedRequest {
  seq: number;
  at: string;
  route: CrmRoute | 'unknown';
  method: string;
  /** The raw (still percent-encoded) path. */
  path: string;
  query: Record<string, string>;
  /** Lower-cased names; auth header values replaced by '***'. */
  headers: Record<string, string>;
  /** Parsed body (secret field masked), the raw text when it did not parse, null when empty or too large. */
  body: unknown;
  /** 0 when the connection was reset or hung. */
  status: number;
  durationMs: number;
}

export interface Fault {
  route: CrmRoute | '*';
  /** Answer with this status and a contract failure body. */
  status?: number;
  /** With status 429: the Retry-After header. */
  retryAfterSec?: number;
  /** Delay before answering; alone it still answers normally. */
  latencyMs?: number;
  /** Never answer; the socket is destroyed on close(). */
  hang?: boolean;
  /** Destroy the socket without answering, before processing. */
  reset?: boolean;
  /** Process the request (really change the leads), then destroy the socket: the lost answer. */
  resetAfterCommit?: boolean;
  /** Answer 200 with a contract failure body and change nothing. */
  failInBody?: boolean;
  /** Probability 0..1 that the fault applies to a matching request; default 1. */
  rate?: number;
  /** Apply at most this many times, then the fault is removed; default unlimited. */
  times?: number;
}

/** What the reference CRM and every vendor emulator have (one base class serves them: ../crm-server.ts). */
export interface CrmTestServer {
  /** e.g. 'http://127.0.0.1:43123' (plus the reference CRM's basePath): the mapping's baseUrl override. */
  readonly url: string;
  readonly port: number;
  /** Copies, in arrival order; secrets masked (the reference CRM's admin requests are not logged). */
  requests(): LoggedRequest[];
  /** Faults use the logical routes: create, fetch (search/find/query), update, upsert, or '*'. */
  addFault(f: Fault): void;
  clearFaults(): void;
  /** Forget records, requests and faults; ids, request seq, rate windows and the PRNG start over. */
  reset(): void;
  /** Closes the server and destroys open (including hung) sockets. */
  close(): Promise<void>;
}

export interface ReferenceCrm extends CrmTestServer {
  /** Copies, in creation order. */
  leads(): Lead[];
  /**
   * Changes a lead behind crm-sync's back, as a CRM user (or another integration, or a lost write) would: top-level
   * fields replace, custom_fields merge key by key, null removes. Throws for an unknown id.
   */
  editLead(id: string, patch: { phone?: string; name?: string; email?: string | null; custom_fields?: Record<string, unknown> }): void;
  /** Deletes a lead behind crm-sync's back. Throws for an unknown id. */
  deleteLead(id: string): void;
}
