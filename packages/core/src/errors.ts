/**
 * Every failure crm-sync reports is a SyncError with a stable `code`. Errors are classified once, here:
 * `retryable` says whether the runner should try again with backoff; everything else goes to the dead letters
 * until the contact changes again. Messages never carry secrets: callers pass URLs through `maskUrl` first.
 */

export type Step = 'validate' | 'map' | 'auth' | 'fetch' | 'create' | 'update' | 'upsert' | 'read-response' | 'store';

export interface ErrorContext {
  tenant?: string;
  contactId?: string;
  step?: Step;
  method?: string;
  /** URL with secrets masked. */
  url?: string;
  status?: number;
  /** The CRM's own words, when it gave any (an excerpt, secrets masked). */
  reason?: string;
}

/** Marks crm-sync's errors across copies of this package (see SyncError's instanceof). */
const SYNC_ERROR = Symbol.for('crm-sync.SyncError');
/** The classes recognized across copies: the ones that classify (a failure, retryable or not). */
const CLASSIFYING = new Set(['SyncError', 'RetryableError', 'PermanentError']);

export class SyncError extends Error {
  readonly code: string;
  readonly retryable: boolean;
  readonly context: ErrorContext;

  /**
   * `err instanceof PermanentError` holds for an error made by another copy of @crm-sync/core too: a plugin built
   * against its own copy throws that copy's classes, and its classification (retryable, permanent, the code) must not
   * be lost on the way to the runner. Such an error is recognized by its mark and its classes' names.
   */
  static override [Symbol.hasInstance](this: abstract new (...args: never[]) => unknown, value: unknown): boolean {
    if (Function.prototype[Symbol.hasInstance].call(this, value)) return true;
    // Across copies only the classification counts: a subclass with fields of its own (MappingError's errors) must
    // come from this copy, whatever another copy's class happens to be called.
    if (!CLASSIFYING.has(this.name)) return false;
    if (typeof value !== 'object' || value === null || (value as Record<symbol, unknown>)[SYNC_ERROR] !== true) return false;
    for (let proto = Object.getPrototypeOf(value); proto !== null; proto = Object.getPrototypeOf(proto)) {
      if ((proto as { constructor?: { name?: string } }).constructor?.name === this.name) return true;
    }
    return false;
  }

  constructor(code: string, message: string, opts: { retryable: boolean; context?: ErrorContext; cause?: unknown }) {
    super(message, opts.cause === undefined ? undefined : { cause: opts.cause });
    Object.defineProperty(this, SYNC_ERROR, { value: true });
    this.name = new.target.name;
    this.code = code;
    this.retryable = opts.retryable;
    this.context = { ...opts.context };
  }

  /** A one-line description with the context an operator needs: where, what and the CRM's reason. */
  describe(): string {
    const c = this.context;
    const where = [c.tenant && `tenant=${c.tenant}`, c.contactId && `contact=${c.contactId}`, c.step && `step=${c.step}`,
      c.method && c.url && `${c.method} ${c.url}`, c.status !== undefined && `status=${c.status}`].filter(Boolean).join(' ');
    return `${this.code}: ${this.message}${where ? ` (${where})` : ''}${c.reason ? ` reason: ${c.reason}` : ''}`;
  }

  toJSON(): Record<string, unknown> {
    return { code: this.code, message: this.message, retryable: this.retryable, ...this.context };
  }
}

/** Network errors, timeouts, 408, 429 and 5xx: worth trying again later. */
export class RetryableError extends SyncError {
  /** How long the CRM asked us to wait (Retry-After), in milliseconds. */
  readonly retryAfterMs?: number;
  constructor(code: string, message: string, opts: { context?: ErrorContext; cause?: unknown; retryAfterMs?: number } = {}) {
    super(code, message, { ...opts, retryable: true });
    this.retryAfterMs = opts.retryAfterMs;
  }
}

/** Other 4xx, failures the CRM reported in its body, unreadable answers: trying again will not help. */
export class PermanentError extends SyncError {
  constructor(code: string, message: string, opts: { context?: ErrorContext; cause?: unknown } = {}) {
    super(code, message, { ...opts, retryable: false });
  }
}

export interface FieldError {
  /** Path of the offending field, e.g. `endpoints.update.method` or `attributes`. */
  field: string;
  message: string;
}

/** A contact event that cannot be accepted. `errors` names each field and the reason. */
export class ContactValidationError extends PermanentError {
  readonly errors: FieldError[];
  constructor(errors: FieldError[], context: ErrorContext = {}) {
    super('ERR_CONTACT_INVALID', errors.map((e) => `${e.field}: ${e.message}`).join('; '), { context: { ...context, step: 'validate' } });
    this.errors = errors;
  }
}

/** A mapping file that is invalid, or an expression in it that fails. Names the file and the path inside it. */
export class MappingError extends PermanentError {
  readonly file?: string;
  readonly errors: FieldError[];
  constructor(errors: FieldError[], opts: { file?: string; context?: ErrorContext; cause?: unknown; code?: string } = {}) {
    const where = opts.file ? `${opts.file}: ` : '';
    super(opts.code ?? 'ERR_MAPPING_INVALID', where + errors.map((e) => `${e.field}: ${e.message}`).join('; '), opts);
    this.file = opts.file;
    this.errors = errors;
  }
}

/** A configuration or usage problem found before anything runs (unknown adapter, missing secret...). */
export class ConfigError extends PermanentError {
  constructor(message: string, code = 'ERR_CONFIG') {
    super(code, message);
  }
}

/** Update answered that the stored lead no longer exists (merged or deleted): forget it and match again. */
export class StaleLeadError extends PermanentError {
  readonly leadId: string;
  constructor(leadId: string, context: ErrorContext) {
    super('ERR_STALE_LEAD', `the CRM no longer has lead ${JSON.stringify(leadId)}`, { context });
    this.leadId = leadId;
  }
}

const RETRYABLE_STATUSES = new Set([408, 425, 429]);

/** The one place an HTTP status is classified. */
export function isRetryableStatus(status: number): boolean {
  return status >= 500 || RETRYABLE_STATUSES.has(status);
}
