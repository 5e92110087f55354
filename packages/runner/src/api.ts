/**
 * The runner's public surface, pinned so the daemon shell (HTTP ingest, CLI, metrics) and the engine room
 * (store, debounce, dispatch) can be built side by side. Implementations: ./runner.ts (class Runner).
 */
import type { CallRecord, CompiledMapping, FieldError, SyncAction } from '@crm-sync/core';
import type { ContactParseOptions } from '@crm-sync/core';

type CountryCode = NonNullable<ContactParseOptions['defaultCountry']>;

export interface TenantSettings {
  name: string;
  mapping: CompiledMapping;
  /** Overrides the mapping's baseUrl. */
  baseUrl?: string;
  /** Trailing debounce: sync once the contact has been quiet this long. Default 5 min. */
  quietMs: number;
  /** Sync at the latest this long after the first pending change, even if changes keep coming. Default 1 h. */
  maxWaitMs: number;
  /** Syncs in flight at once for this tenant. Default 4. */
  concurrency: number;
  /** CRM requests per second for this tenant (default: the mapping's rateLimit.requestsPerSecond, else unlimited). */
  requestsPerSecond?: number;
  /** Country for phones written without a country code. */
  defaultCountry?: CountryCode;
}

export interface RetryPolicy {
  /** First backoff. Default 10 s. */
  baseMs: number;
  /** Longest single backoff. Default 1 h. */
  maxMs: number;
  /** After this long of failing, a contact goes to the dead letters. Default 24 h. */
  budgetMs: number;
}

export interface RejectedEvent {
  index: number;
  eventId?: string;
  errors: FieldError[];
}

export interface IngestResult {
  /** Events that are now durable (including redeliveries and stale events, which change nothing). */
  accepted: number;
  /** Of the accepted: redelivered eventIds and events older than the newest accepted for their contact. */
  ignored: number;
  rejected: RejectedEvent[];
  /** Only when asked for (IngestOptions.contacts): each accepted event's contact, in input order. */
  contacts?: Array<{ tenant: string; contactId: string }>;
}

export interface StatusCounts {
  /** Contacts waiting for their quiet window (or max wait). */
  pending: number;
  inFlight: number;
  /** Contacts waiting for a retry after a retryable failure. */
  retrying: number;
  deadLetters: number;
  /** Contacts with a lead id stored. */
  leads: number;
}

export interface AttemptRecord {
  at: string;
  outcome: SyncAction | 'unchanged' | 'failed';
  leadId?: string;
  calls: CallRecord[];
  error?: { code: string; message: string; retryable: boolean; status?: number; reason?: string; step?: string };
  /** What the engine noticed in a sync that succeeded: several leads matched, a stale id replaced, a flow's slip. */
  warnings?: string[];
  /** skipped: why the flow wrote nothing. */
  reason?: string;
}

export interface ContactStatus {
  tenant: string;
  contactId: string;
  leadId?: string;
  state: 'pending' | 'in-flight' | 'retrying' | 'dead-letter' | 'synced' | 'idle';
  /** When the next sync is due (pending / retrying). */
  dueAt?: string;
  payloadHash?: string;
  lastOutcome?: AttemptRecord['outcome'];
  /** A resync was asked for at this time and no sync since has sent the contact. */
  resyncAt?: string;
  attempts: number;
  /** The last N attempts, newest first. */
  history: AttemptRecord[];
}

export interface DeadLetter {
  tenant: string;
  contactId: string;
  at: string;
  error: NonNullable<AttemptRecord['error']>;
  attempts: number;
  /** `permanent`: the CRM (or the mapping) refused it; `retries-exhausted`: retryable failures outlasted the retry budget. */
  cause?: 'permanent' | 'retries-exhausted';
}

/** One sync attempt, as metrics see it. `calls` carry step, status and duration per CRM request. */
export interface SyncAttemptEvent {
  tenant: string;
  contactId: string;
  outcome: AttemptRecord['outcome'];
  calls: CallRecord[];
  durationMs: number;
  leadId?: string;
  error?: AttemptRecord['error'];
  warnings?: string[];
  /** skipped: why the flow wrote nothing. */
  reason?: string;
}

/**
 * What the runner reports as it works, for metrics and logs (the shell wires prom-client to these). Hooks are
 * called synchronously; one that throws is reported to `onError` and otherwise ignored.
 */
export interface RunnerHooks {
  /** After a batch is durable: per tenant, how many were accepted and how many of those changed nothing. */
  onAccepted?(e: { tenant: string; accepted: number; ignored: number }): void;
  onRejected?(e: { count: number }): void;
  /** Every attempt: synced, unchanged or failed. */
  onSync?(e: SyncAttemptEvent): void;
  onRetry?(e: { tenant: string; contactId: string; delayMs: number; error: NonNullable<AttemptRecord['error']> }): void;
  onDeadLetter?(e: { tenant: string; contactId: string; cause: NonNullable<DeadLetter['cause']>; error: NonNullable<AttemptRecord['error']> }): void;
  /**
   * A sync that could create found another sync of the same phone or email under way (one person, two contact ids):
   * it sent nothing, and its contact is looked at again in delayMs, when the other one's lead can be found.
   */
  onDeferred?(e: { tenant: string; contactId: string; delayMs: number }): void;
  /**
   * The tenant's CRM asked us to slow down (429 Retry-After, the mapping's rateLimited reader, or its rate-limit headers
   * ran out). pauseMs: how much this extends the pause already in force on this runner (attempts in flight that met
   * the same limit add only what they lengthen it by), so the sum is the time paused.
   */
  onRateLimited?(e: { tenant: string; pauseMs: number }): void;
  /** Something in the runner itself failed (e.g. the store); the affected contact is retried when its lease lapses. */
  onError?(e: { error: unknown; tenant?: string; contactId?: string; during: string }): void;
}

/** The subset of pino the runner logs through. */
export interface RunnerLogger {
  debug(obj: object, msg?: string): void;
  info(obj: object, msg?: string): void;
  warn(obj: object, msg?: string): void;
  error(obj: object, msg?: string): void;
}
