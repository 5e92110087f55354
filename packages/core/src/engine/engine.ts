import { createHash } from 'node:crypto';
import type { CredentialContext, EndpointName, FlowOperations, FlowOutcome, OutgoingRequest, SyncAction } from '../adapters';
import type { Contact } from '../contact';
import { MappingError, PermanentError, RetryableError, StaleLeadError, SyncError, type ErrorContext } from '../errors';
import { encodeForm, parseResponseBody } from '../http/encode';
import type { HttpClient, HttpRequest, HttpResponse } from '../http/client';
import type { CompiledEndpoint, CompiledMapping } from '../mapping/compile';
import { timelessBindings } from '../mapping/expressions';
import type { MatchKey } from '../mapping/types';
import { maskSecrets, resolveSecretRef, type SecretResolver } from '../secrets';
import { applyClearedFields, setOwn } from './cleared';

/** A mapping's `timeoutMs` when it sets none: how long one CRM request may take. */
export const DEFAULT_REQUEST_TIMEOUT_MS = 10_000;

/** How long one of the mapping's CRM requests may take: its `timeoutMs`, else the default. */
export function requestTimeoutMs(mapping: CompiledMapping): number {
  return mapping.definition.timeoutMs ?? DEFAULT_REQUEST_TIMEOUT_MS;
}

export interface SyncOptions {
  /** The lead id stored for this contact. */
  knownLeadId?: string;
  /** The payload last synced for this contact: fields gone since then are sent as cleared (mapping's `clearedFields`). */
  previousPayload?: unknown;
  /** Overrides the mapping's baseUrl (tests, staging). */
  baseUrl?: string;
  /** When (ms since epoch) a create was sent whose answer never arrived. With `searchLagMs`, a not-found within the lag is retried. */
  unconfirmedCreateAt?: number;
  /**
   * The contact's phone and email when that create was sent. If they have changed since, a fetch that finds nothing
   * under the current ones looks under these too: the lead the create may have made is this contact's.
   */
  unconfirmedCreateIdentity?: ContactIdentity;
  /** What `renderPayload` gave for this contact and knownLeadId, when the caller has it already: not rendered again. */
  rendered?: { payload: unknown; hash: string };
  /** Awaited right before a create is sent: the runner records its create intent here. */
  onCreateIntent?: () => void | Promise<void>;
  /** Told of every request: the runner paces a tenant's requests here (its rate limit, the CRM's quota). */
  pacer?: RequestPacer;
}

/** A call's duration as its record keeps it: milliseconds to a tenth. */
function tenthsOfMs(ms: number): number {
  return Math.round(ms * 10) / 10;
}

/** What a fetch matches a person by. */
export type ContactIdentity = Pick<Contact, 'phone' | 'email'>;

/** Sees each request of a sync go out and come back. */
export interface RequestPacer {
  /** Awaited before the request is sent. */
  beforeRequest(): void | Promise<void>;
  /** The request was answered (with what the mapping's rateLimit readers read from the answer, if anything) or failed. */
  afterResponse(rateLimit: RateLimitInfo | undefined): void;
}

export interface CallRecord {
  /** The endpoint, or `auth` for a request an auth adapter's credential step made (a token endpoint). */
  step: EndpointName | 'auth';
  method: string;
  /** Secrets masked. */
  url: string;
  status?: number;
  durationMs: number;
  /** The CRM's reason, or the error, for a call that failed. */
  reason?: string;
  at: string;
}

export interface RateLimitInfo {
  remaining?: number;
  resetMs?: number;
}

export interface SyncResult {
  action: SyncAction;
  leadId?: string;
  /** The mapping's payload for this contact (before cleared fields), and its hash. */
  payload: unknown;
  payloadHash: string;
  calls: CallRecord[];
  warnings: string[];
  /** skipped: why the flow wrote nothing (FlowOperations.skip). */
  reason?: string;
  /** A stored lead id the CRM no longer has; the sync matched again. */
  forgotLeadId?: string;
  rateLimit?: RateLimitInfo;
}

/** Options of `SyncEngine.readLead`. */
export interface ReadLeadOptions {
  /** The lead id stored for this contact: the fetch is sent as a sync would send it with this id (none: without). */
  knownLeadId?: string;
  /** Overrides the mapping's baseUrl (tests, staging). */
  baseUrl?: string;
  pacer?: RequestPacer;
}

/** What the CRM holds for a contact, read back with the mapping's fetch (`crm-sync reconcile`). */
export type LeadReading =
  | { found: false; calls: CallRecord[] }
  | {
    found: true;
    /** The id of the lead the fetch found (the stored one, or another: a duplicate, a merge). */
    leadId: string;
    /** What the fetch's `leadFields` reader gave (the lead in the payload's shape), secrets masked; undefined: nothing to compare. */
    fields: unknown;
    calls: CallRecord[];
  };

/** A failure carries what was done before it, so the runner can keep the attempt history. */
export interface SyncFailureDetails {
  calls: CallRecord[];
  rateLimit?: RateLimitInfo;
}

export function failureDetails(err: unknown): SyncFailureDetails | undefined {
  return (err as { syncDetails?: SyncFailureDetails })?.syncDetails;
}

export interface EngineDeps {
  http: HttpClient;
  secrets?: SecretResolver;
  now?: () => number;
  userAgent?: string;
  /**
   * Whether auth adapters with a credential step (OAuth 2.0) exchange the secret for their credential. Default true.
   * Offline runs (golden examples, preview) set false: the secret stands for the credential, nothing is sent for it.
   */
  exchangeCredentials?: boolean;
  /** Told each secret value a sync uses besides the mapping's secret (a client secret, an access token), for callers that mask what they record. */
  onSecret?: (value: string) => void;
}

/** Stable JSON (sorted keys) hashed: the same payload always has the same hash. */
export function hashPayload(payload: unknown): string {
  const stable = (v: unknown): unknown => (Array.isArray(v) ? v.map(stable)
    : v && typeof v === 'object' ? Object.fromEntries(Object.keys(v).sort().map((k) => [k, stable((v as Record<string, unknown>)[k])])) : v);
  return createHash('sha256').update(JSON.stringify(stable(payload ?? null))).digest('hex').slice(0, 32);
}

/** A reader's answer read as JSONata's $boolean reads it: 0 and "" are false (an `error_code` of 0, an empty `existing_id`). */
function truthy(v: unknown): boolean {
  return v !== undefined && v !== null && v !== false && v !== 0 && v !== '' && !(Array.isArray(v) && v.length === 0);
}

function retryAfterMs(header: string | undefined, now: number): number | undefined {
  if (!header) return undefined;
  if (/^\d+(\.\d+)?$/.test(header.trim())) return Math.round(Number(header) * 1000);
  const at = Date.parse(header);
  return Number.isNaN(at) ? undefined : Math.max(0, at - now);
}

function excerpt(v: unknown, max = 300): string | undefined {
  if (v === undefined || v === null || v === '') return undefined;
  const s = typeof v === 'string' ? v : JSON.stringify(v);
  return s.length > max ? `${s.slice(0, max)}…` : s;
}

/**
 * The sync engine: one rule for every CRM. Known id → update; else the flow decides (fetch → update | create,
 * upsert, create). It performs the calls through the injected HTTP client and reads the answers with the mapping's
 * readers. A failing fetch throws; it never falls through to create.
 */
export class SyncEngine {
  private readonly secrets: SecretResolver;
  private readonly now: () => number;

  constructor(private readonly deps: EngineDeps) {
    this.secrets = deps.secrets ?? resolveSecretRef;
    this.now = deps.now ?? Date.now;
  }

  /** The mapping's payload for a contact and its hash: what the runner compares to skip unchanged contacts. */
  async renderPayload(mapping: CompiledMapping, contact: Contact, leadId?: string): Promise<{ payload: unknown; hash: string }> {
    const payload = await mapping.payload.evaluate({ contact, leadId, tenant: contact.tenant }, { tenant: contact.tenant, contactId: contact.contactId, step: 'map' });
    return { payload, hash: hashPayload(payload) };
  }

  async sync(mapping: CompiledMapping, contact: Contact, options: SyncOptions = {}): Promise<SyncResult> {
    return this.runWithDetails(new SyncRun(this.deps, mapping, contact, options, this.secrets, this.now), (run) => run.execute());
  }

  /**
   * Reads a contact's lead back from the CRM: the mapping's fetch, sent as a sync would send it with the stored lead
   * id (its match chain, its templates), and the fetch's `leadFields` reader. Nothing is written to the CRM. A mapping
   * without a fetch endpoint cannot read a lead back (ERR_NO_FETCH); a failing fetch throws as in a sync.
   */
  async readLead(mapping: CompiledMapping, contact: Contact, options: ReadLeadOptions): Promise<LeadReading> {
    if (!mapping.endpoints.fetch) {
      throw new PermanentError('ERR_NO_FETCH', `the mapping ${JSON.stringify(mapping.name)} has no fetch endpoint: a lead cannot be read back from the CRM`,
        { context: { tenant: contact.tenant, contactId: contact.contactId, step: 'fetch' } });
    }
    return this.runWithDetails(new SyncRun(this.deps, mapping, contact, options, this.secrets, this.now), (run) => run.readBack());
  }

  /** A failure carries the calls made before it (failureDetails). */
  private async runWithDetails<T>(run: SyncRun, work: (run: SyncRun) => Promise<T>): Promise<T> {
    try {
      return await work(run);
    } catch (err) {
      // Configurable: an adapter that throws one error object to several syncs must not make the second one crash here.
      if (err instanceof SyncError) Object.defineProperty(err, 'syncDetails', { value: { calls: run.calls, rateLimit: run.rateLimit }, enumerable: false, configurable: true });
      throw err;
    }
  }
}

/** What one request of a sync is rendered with, besides the payload. `contact`: another than the sync's own (find). */
interface RequestVars {
  leadId?: string;
  match?: { key: MatchKey; value: string };
  contact?: Contact;
}

class SyncRun {
  readonly calls: CallRecord[] = [];
  readonly warnings: string[] = [];
  rateLimit?: RateLimitInfo;
  private secret?: string;
  /** The credential whose derived secrets (AuthAdapter.derivedSecrets) are masked already. */
  private derivedFrom?: string;
  /** What the auth adapter adds to requests: the secret, or what its credential step exchanged it for. */
  private credential?: string;
  private credentialRenewed = false;
  /** Every secret value this sync has used: masked in everything it records. */
  private readonly secretValues: string[] = [];
  private payload: unknown;
  private clearedPayload: unknown;
  /** The mapping's named secrets (`secrets:`), resolved: what templates and bodies see as `secrets`. */
  private namedSecrets: Record<string, string> = {};
  /** The mapping's `vars` for this contact (an empty object without them). */
  private contactVars: Record<string, unknown> = {};
  /** The payloads checkSearchesFor renders fetches over (the contact's, another person's), by contact and lead id. */
  private readonly checkPayloads = new Map<string, unknown>();
  private searchedNothingFound = false;
  private readonly base: string;

  constructor(
    private readonly deps: EngineDeps,
    private readonly mapping: CompiledMapping,
    private readonly contact: Contact,
    private readonly options: SyncOptions,
    private readonly resolveSecret: SecretResolver,
    private readonly now: () => number,
  ) {
    this.base = (options.baseUrl ?? mapping.definition.baseUrl).replace(/\/+$/, '');
  }

  private ctx(extra: ErrorContext = {}): ErrorContext {
    return { tenant: this.contact.tenant, contactId: this.contact.contactId, ...extra };
  }

  /** The mapping's secret and the contact's payload, which every request may use. */
  private async prepare(): Promise<void> {
    const { mapping, contact } = this;
    if (mapping.auth) this.secret = this.useSecret(this.resolveSecret(String(mapping.definition.auth.secret)), false);
    const named = mapping.definition.secrets;
    if (named) this.namedSecrets = Object.fromEntries(Object.entries(named).map(([name, ref]) => [name, this.useSecret(this.resolveSecret(ref))]));
    this.payload = this.options.rendered
      ? this.options.rendered.payload
      : await mapping.payload.evaluate({ contact, leadId: this.options.knownLeadId, tenant: contact.tenant }, this.ctx({ step: 'map' }));
    if (!this.payload || typeof this.payload !== 'object') {
      throw new PermanentError('ERR_PAYLOAD_INVALID', `the mapping's payload must be an object, got ${excerpt(this.payload) ?? 'nothing'}`, { context: this.ctx({ step: 'map' }) });
    }
    this.clearedPayload = applyClearedFields(this.payload, this.options.previousPayload, mapping.definition.clearedFields ?? 'null');
    this.contactVars = await this.varsOf(contact);
  }

  /** The mapping's `vars` for a contact: an object, or a permanent error saying what it gave. */
  private async varsOf(contact: Contact, leadId = this.options.knownLeadId, bindings?: Record<string, unknown>): Promise<Record<string, unknown>> {
    const expression = this.mapping.vars;
    if (!expression) return {};
    const value = await expression.evaluate({ contact, leadId, tenant: contact.tenant }, this.ctx({ step: 'map' }), bindings);
    if (value === undefined) return {};
    if (typeof value !== 'object' || value === null || Array.isArray(value)) {
      throw new PermanentError('ERR_VARS_INVALID', `the mapping's vars must be an object, got ${excerpt(value) ?? 'nothing'}`, { context: this.ctx({ step: 'map' }) });
    }
    return value as Record<string, unknown>;
  }

  /** The fetch alone, with the stored lead id, and the found lead's fields (SyncEngine.readLead). */
  async readBack(): Promise<LeadReading> {
    await this.prepare();
    const found = await this.matchLead(this.options.knownLeadId);
    if (found === undefined) return { found: false, calls: this.calls };
    const { leadId, answer: { res, readers, context } } = found;
    let fields = await readers.leadFields?.evaluate(res, context);
    // The CRM's words, shown to an operator: a secret it echoes back is masked like everywhere else.
    if (fields !== undefined && this.secretValues.length > 0) fields = JSON.parse(this.mask(JSON.stringify(fields)));
    return { found: true, leadId, fields, calls: this.calls };
  }

  async execute(): Promise<SyncResult> {
    await this.prepare();

    let known = this.options.knownLeadId;
    let forgotLeadId: string | undefined;
    let outcome: FlowOutcome;
    try {
      outcome = await this.runFlow(known);
    } catch (err) {
      // The stored lead was merged or deleted: forget it and match again, once.
      if (!(err instanceof StaleLeadError) || !known || err.leadId !== known) throw err;
      forgotLeadId = known;
      known = undefined;
      this.warnings.push(`lead ${JSON.stringify(forgotLeadId)} no longer exists in the CRM; matched again`);
      outcome = await this.runFlow(undefined);
    }
    return {
      action: outcome.action, leadId: outcome.leadId, ...(outcome.action === 'skipped' ? { reason: outcome.reason } : {}),
      payload: this.payload, payloadHash: this.options.rendered?.hash ?? hashPayload(this.payload),
      calls: this.calls, warnings: this.warnings, forgotLeadId, rateLimit: this.rateLimit,
    };
  }

  /**
   * The flow adapter's run, held to its contract: what it returns must be the outcome of one of its operations (so
   * the lead id stored is one the CRM gave), and anything it throws that is not the engine's own classified error is
   * a permanent ERR_FLOW_ADAPTER. A flow's bug fails the same way on every attempt, and after a write it succeeded
   * in, a retry would write again (a second lead from a second create).
   */
  private async runFlow(knownLeadId: string | undefined): Promise<FlowOutcome> {
    const flow = this.mapping.flow;
    // The outcomes the operations gave, in order: the writes', and the skips'.
    const writes: FlowOutcome[] = [];
    const skips: FlowOutcome[] = [];
    // What the operations themselves throw (the engine's errors, a store that failed to record a create intent) is
    // passed on as it is: only the flow's own failures are the flow's.
    const fromOps = new WeakSet<object>();
    const pass = async <T>(work: () => Promise<T>): Promise<T> => {
      try {
        return await work();
      } catch (err) {
        if (typeof err === 'object' && err !== null) fromOps.add(err);
        throw err;
      }
    };
    const op = (write: () => Promise<FlowOutcome>) => pass(async () => {
      const outcome = await write();
      writes.push(outcome);
      return outcome;
    });
    const ops: FlowOperations = {
      knownLeadId,
      has: (e) => this.mapping.endpoints[e] !== undefined,
      find: () => pass(() => this.find(knownLeadId)),
      create: () => op(() => this.create()),
      update: (id) => {
        if (typeof id !== 'string' || id === '') {
          return Promise.reject(new PermanentError('ERR_FLOW_ADAPTER', `the ${flow.name} flow adapter asked to update lead ${this.maskedExcerpt(id) ?? 'nothing'}: a lead id is a non-empty string`, { context: this.ctx({ step: 'update' }) }));
        }
        return op(() => this.update(id));
      },
      upsert: () => op(() => this.upsert(knownLeadId)),
      skip: (reason) => {
        const skipped: FlowOutcome = { action: 'skipped', reason: excerpt(this.mask(String(reason ?? '')), 300) ?? '' };
        skips.push(skipped);
        return skipped;
      },
    };
    let outcome: unknown;
    try {
      outcome = await flow.run(ops);
    } catch (err) {
      if (err instanceof SyncError || (typeof err === 'object' && err !== null && fromOps.has(err))) throw err;
      const message = this.mask(String((err as Error)?.message ?? err));
      // After a write that succeeded, the CRM has the lead: its outcome is kept (a retry would write again, a second
      // lead from a second create), and the flow's failure said as a warning.
      const last = writes.at(-1);
      if (last) {
        this.warnings.push(`the ${flow.name} flow adapter failed after its write (${message}); the write's outcome is kept`);
        return last;
      }
      throw new PermanentError('ERR_FLOW_ADAPTER', `the ${flow.name} flow adapter failed: ${message}`, { context: this.ctx(), cause: err });
    }
    if (writes.includes(outcome as FlowOutcome)) return outcome as FlowOutcome;
    // A skip (or a copy of one: `{...ops.skip(why)}`).
    const skip = skips.includes(outcome as FlowOutcome) ? outcome as FlowOutcome : isOutcomeLike(outcome) && outcome.action === 'skipped' ? skips.at(-1) : undefined;
    if (skip) {
      const wrote = writes.at(-1);
      if (!wrote) return skip;
      this.warnings.push(`the ${flow.name} flow adapter skipped the contact after a write; the write's outcome is kept`);
      return wrote;
    }
    // A copy of a write's outcome (`{...await ops.update(id)}`) is that outcome.
    const same = writes.find((o) => isOutcomeLike(outcome) && outcome.action === o.action && outcome.leadId === o.leadId);
    if (same) return same;
    const what = this.maskedExcerpt(outcome) ?? 'nothing';
    const last = writes.at(-1);
    if (last) {
      this.warnings.push(`the ${flow.name} flow adapter returned ${what}, not the outcome of its write; the write's outcome is kept`);
      return last;
    }
    throw new PermanentError('ERR_FLOW_ADAPTER',
      `the ${flow.name} flow adapter returned ${what} without writing: a flow returns what ops.create(), ops.update() or ops.upsert() returned`, { context: this.ctx() });
  }

  private endpoint(step: EndpointName): CompiledEndpoint {
    const e = this.mapping.endpoints[step];
    if (!e) throw new PermanentError('ERR_MAPPING_INVALID', `the ${this.mapping.flow.name} flow called ${step}, which the mapping does not declare`, { context: this.ctx({ step }) });
    return e;
  }

  private async find(knownLeadId: string | undefined): Promise<string | undefined> {
    const found = await this.matchLead(knownLeadId);
    if (found) return found.leadId;
    // A create sent for this contact whose answer never came may have made a lead under the phone or email the
    // contact had then (a corrected number since): look there too, or that lead would be left and a second made.
    const before = this.options.unconfirmedCreateIdentity;
    if (before === undefined || (before.phone === this.contact.phone && (before.email ?? '') === (this.contact.email ?? ''))) return undefined;
    const asBefore: Contact = { ...this.contact, phone: before.phone };
    if (before.email === undefined) delete asBefore.email;
    else asBefore.email = before.email;
    return (await this.matchLead(knownLeadId, asBefore))?.leadId;
  }

  /**
   * The match chain: the lead the first fetch that finds one found, with that fetch's answer; undefined: none did.
   * `contact`: whose phone and email the fetches look for (the fetch templates see it as `contact`).
   */
  private async matchLead(knownLeadId: string | undefined, contact: Contact = this.contact): Promise<{ leadId: string; answer: { res: ReaderInput; readers: CompiledEndpoint['readers']; context: ErrorContext } } | undefined> {
    const keys: Array<MatchKey | undefined> = this.mapping.definition.match ?? [undefined];
    for (const key of keys) {
      let match: { key: MatchKey; value: string } | undefined;
      if (key) {
        const value = key === 'leadId' ? knownLeadId : contact[key];
        if (!value) continue;
        match = { key, value };
      }
      const { res, readers, context } = await this.call('fetch', { leadId: knownLeadId, match, contact });
      if (truthy(await readers.notFound?.evaluate(res, context))) continue;
      await this.throwIfFailed(res, readers, context);
      const id = await this.readLeadId(res, readers, context);
      if (id === undefined) throw new PermanentError('ERR_NO_LEAD_ID', 'fetch answered success, but responses.leadId found no id (is the notFound reader right?)', { context });
      return { leadId: id, answer: { res, readers, context } };
    }
    this.searchedNothingFound = true;
    return undefined;
  }

  private async create(): Promise<FlowOutcome> {
    const lag = this.mapping.definition.searchLagMs;
    const since = this.options.unconfirmedCreateAt;
    if (this.searchedNothingFound && lag && since !== undefined && this.now() - since < lag) {
      // An earlier create may have succeeded without our hearing: its lead is not searchable yet. Wait rather than duplicate.
      throw new RetryableError('ERR_SEARCH_LAG', `a create sent ${this.now() - since} ms ago is unconfirmed and the CRM's search may lag ${lag} ms`,
        { context: this.ctx({ step: 'create' }), retryAfterMs: lag - (this.now() - since) });
    }
    await this.options.onCreateIntent?.();
    const { res, readers, context } = await this.call('create', {});
    const existing = await readers.conflictLeadId?.evaluate(res, context);
    if (truthy(existing)) {
      const id = String(Array.isArray(existing) ? existing[0] : existing);
      this.warnings.push(`create answered that lead ${JSON.stringify(id)} already exists; updating it`);
      return this.update(id);
    }
    await this.throwIfFailed(res, readers, context);
    const id = await this.readLeadId(res, readers, context);
    if (id === undefined) throw new PermanentError('ERR_NO_LEAD_ID', 'create answered success, but responses.leadId found no id', { context });
    return { action: 'created', leadId: id };
  }

  private async update(leadId: string): Promise<FlowOutcome> {
    const { res, readers, context } = await this.call('update', { leadId });
    if (truthy(await readers.stale?.evaluate(res, context))) {
      throw new StaleLeadError(leadId, context);
    }
    await this.throwIfFailed(res, readers, context);
    // The id updated stays, unless the update endpoint reads one of its own: the shared reader was written for the
    // answers that carry an id (fetch, create), and on an update answer (`{"result": true}`) it can read anything.
    const ownReader = this.mapping.definition.endpoints.update?.responses?.leadId !== undefined;
    return { action: 'updated', leadId: (ownReader ? await this.readLeadId(res, readers, context) : undefined) ?? leadId };
  }

  private async upsert(knownLeadId: string | undefined): Promise<FlowOutcome> {
    const { res, readers, context } = await this.call('upsert', { leadId: knownLeadId });
    await this.throwIfFailed(res, readers, context);
    return { action: 'upserted', leadId: (await this.readLeadId(res, readers, context)) ?? knownLeadId };
  }

  private async readLeadId(res: ReaderInput, readers: CompiledEndpoint['readers'], context: ErrorContext): Promise<string | undefined> {
    let id = await readers.leadId?.evaluate(res, context);
    if (Array.isArray(id)) {
      if (id.length > 1) this.warnings.push(`${context.step} matched ${id.length} leads; using the first (${JSON.stringify(String(id[0]))})`);
      id = id[0];
    }
    if (id === undefined || id === null || id === '') return undefined;
    if (typeof id !== 'string' && typeof id !== 'number') {
      throw new PermanentError('ERR_NO_LEAD_ID', `responses.leadId must give a string or number, got ${this.maskedExcerpt(id)}`, { context });
    }
    return String(id);
  }

  private async throwIfFailed(res: ReaderInput, readers: CompiledEndpoint['readers'], context: ErrorContext): Promise<void> {
    if (!truthy(await readers.failed?.evaluate(res, context))) return;
    const reason = this.maskedExcerpt(await readers.reason?.evaluate(res, context).catch(() => undefined)) ?? this.maskedExcerpt(res.body);
    const ctx = { ...context, reason };
    // The CRM's rate limit, however it says so (a 429, Bitrix24's 503 QUERY_LIMIT_EXCEEDED): retried, and the runner
    // pauses the whole tenant for it. Where the reader cannot be evaluated, it counts as false.
    if (truthy(await readers.rateLimited?.evaluate(res, context).catch(() => false))) {
      throw new RetryableError('ERR_RATE_LIMITED', `the CRM answered ${res.status}: its rate limit`, { context: ctx, retryAfterMs: retryAfterMs(res.headers['retry-after'], this.now()) });
    }
    if (truthy(await readers.retryable?.evaluate(res, context))) {
      throw new RetryableError('ERR_CRM_UNAVAILABLE', `the CRM answered ${res.status}`,
        { context: ctx, retryAfterMs: retryAfterMs(res.headers['retry-after'], this.now()) });
    }
    const refused = res.status === 401 || res.status === 403 || (await this.credentialRefused(res, readers, context));
    const code = refused ? 'ERR_CRM_AUTH' : 'ERR_CRM_REJECTED';
    throw new PermanentError(code, res.status < 400 ? `the CRM reported a failure in an HTTP ${res.status} answer` : `the CRM answered ${res.status}`, { context: ctx });
  }

  private mask(text: string): string {
    return this.secretValues.length > 0 ? maskSecrets(text, this.secretValues) : text;
  }

  /** Adds a secret value to those masked (and tells deps.onSecret of it, unless it is the mapping's own). */
  private useSecret(value: string, tell = true): string {
    if (value && !this.secretValues.includes(value)) {
      this.secretValues.push(value);
      if (tell) this.deps.onSecret?.(value);
    }
    return value;
  }

  /** The credential for the next request: the secret, or (auth adapters with a credential step) what it exchanged it for. */
  private async credentialFor(step: EndpointName, renew: boolean): Promise<string | undefined> {
    const auth = this.mapping.auth;
    if (!auth) return undefined;
    if (!auth.credential || this.deps.exchangeCredentials === false) return this.secret;
    if (this.credential !== undefined && !renew) return this.credential;
    const rejected = renew ? this.credential : undefined;
    const errorContext = this.ctx({ step: 'auth' });
    const ctx: CredentialContext = {
      http: { send: (req) => this.authRequest(req) },
      resolveSecret: (ref) => this.useSecret(this.resolveSecret(ref)),
      maskAlso: (value) => { if (typeof value === 'string' && value.length > 0) this.useSecret(value); },
      now: this.now,
      ...(rejected === undefined ? {} : { rejected }),
      timeoutMs: requestTimeoutMs(this.mapping),
      errorContext,
    };
    let credential: string;
    try {
      credential = await auth.credential(this.secret!, this.mapping.authOptions, ctx);
    } catch (err) {
      throw this.adapterFailure(err, `failed to get a credential before ${step}`, errorContext);
    }
    if (typeof credential !== 'string' || credential === '') {
      throw new PermanentError('ERR_AUTH_ADAPTER', `the ${auth.name} auth adapter gave no credential`, { context: errorContext });
    }
    this.credential = this.useSecret(credential);
    return credential;
  }

  /** A request of an auth adapter's credential step: sent through the engine's client, recorded as step `auth`. */
  private async authRequest(req: HttpRequest): Promise<HttpResponse> {
    const at = new Date(this.now()).toISOString();
    const url = this.mask(req.url);
    const sentAt = performance.now();
    try {
      const res = await this.deps.http.send({ ...req, step: 'auth' });
      this.calls.push({ step: 'auth', method: req.method, url, status: res.status, durationMs: tenthsOfMs(res.durationMs), at });
      return res;
    } catch (err) {
      this.calls.push({ step: 'auth', method: req.method, url, durationMs: tenthsOfMs(performance.now() - sentAt), reason: this.mask(String((err as Error)?.message ?? err)), at });
      throw err;
    }
  }

  /**
   * What an auth adapter threw, as this sync's error: its own classification kept (a copy: an adapter may hand the
   * same error to every sync that waited for one token request, so it is not changed in place), naming this sync's
   * tenant, contact and step, masked with its secrets. Anything else it threw is a permanent ERR_AUTH_ADAPTER: an
   * adapter's bug fails the same way on every attempt, and its message may quote the secret.
   */
  private adapterFailure(err: unknown, what: string, errorContext: ErrorContext): SyncError {
    const auth = this.mapping.auth!;
    // Its context is the adapter's words too (a url it tried, a reason): masked with the message.
    if (err instanceof SyncError) return this.maskedCopy(err, errorContext);
    return new PermanentError('ERR_AUTH_ADAPTER', `the ${auth.name} auth adapter ${what}: ${this.mask(String((err as Error)?.message ?? err))}`, { context: errorContext });
  }

  /** A classified error with every text it carries masked, when this sync has secrets to mask. */
  private maskedError(err: unknown): unknown {
    return err instanceof SyncError && this.secretValues.length > 0 ? this.maskedCopy(err) : err;
  }

  /**
   * A copy of a classified error (the original is left: an adapter may hand one error to several syncs) with `extra`
   * added to its context and every text it carries masked with this sync's secrets: message, context, field errors.
   */
  private maskedCopy(err: SyncError, extra: ErrorContext = {}): SyncError {
    const context: ErrorContext = { ...err.context, ...extra };
    for (const [k, v] of Object.entries(context)) if (typeof v === 'string') (context as Record<string, unknown>)[k] = this.mask(v);
    if (err instanceof MappingError) {
      return new MappingError(err.errors.map((e) => ({ field: e.field, message: this.mask(e.message) })), { file: err.file, code: err.code, context, cause: err });
    }
    return err.retryable
      ? new RetryableError(err.code, this.mask(err.message), { context, cause: err, retryAfterMs: (err as RetryableError).retryAfterMs })
      : new PermanentError(err.code, this.mask(err.message), { context, cause: err });
  }

  /** The CRM's words cut to an excerpt, masked before the cut: a secret cut in half would escape the mask. */
  private maskedExcerpt(v: unknown, max?: number): string | undefined {
    if (v === undefined || v === null || v === '') return undefined;
    return excerpt(this.mask(typeof v === 'string' ? v : JSON.stringify(v)), max);
  }

  /** Builds one request from an endpoint: URL template, query, headers, body, auth, encoding. */
  async buildRequest(step: EndpointName, vars: RequestVars): Promise<{ request: OutgoingRequest; encoded?: string; endpoint: CompiledEndpoint }> {
    const endpoint = this.endpoint(step);
    const context = this.ctx({ step });
    let request: OutgoingRequest;
    try {
      request = await this.renderRequest(endpoint, step, vars, step === 'create' ? this.payload : this.clearedPayload, context);
    } catch (err) {
      // Templates and bodies see the named secrets: what a failing one says (a URL it rendered, a value JSONata could
      // not cast) may quote them.
      throw this.maskedError(err);
    }
    if (step === 'fetch') await this.checkSearchesFor(request, endpoint, vars, context);
    const auth = this.mapping.auth;
    const credential = auth ? (await this.credentialFor(step, false))! : undefined;
    if (auth) {
      try {
        if (auth.derivedSecrets && credential !== this.derivedFrom) {
          for (const value of auth.derivedSecrets(credential!, this.mapping.authOptions)) this.useSecret(value);
          this.derivedFrom = credential;
        }
        auth.apply(request, credential!, this.mapping.authOptions);
      } catch (err) {
        throw this.adapterFailure(err, `failed to apply its credential to ${step}`, context);
      }
    }
    let encoded: string | undefined;
    if (request.body !== undefined) {
      // The mapping's own Content-Type (in any case) stays: a vendor type such as application/vnd.api+json.
      const typed = Object.keys(request.headers).some((name) => name.toLowerCase() === 'content-type');
      if (endpoint.encoding === 'form') {
        encoded = encodeForm(request.body);
        if (!typed) request.headers['content-type'] = 'application/x-www-form-urlencoded';
      } else {
        encoded = JSON.stringify(request.body);
        if (!typed) request.headers['content-type'] = 'application/json';
      }
    }
    if (auth?.sign) {
      try {
        auth.sign({ method: request.method, url: request.url, headers: request.headers, body: encoded }, credential!, this.mapping.authOptions, { now: this.now });
      } catch (err) {
        throw this.adapterFailure(err, `failed to sign ${step}`, context);
      }
    }
    if (auth) this.checkAdapterHeaders(request.headers, auth.name, context);
    return { request, encoded, endpoint };
  }

  /**
   * Headers as an auth adapter left them: names and values node can send. A value that is not a string would go out
   * as `[object Object]` or not at all (and the CRM's 401 would blame the credential); a line break would be refused
   * by node on every attempt as an unclassified network error.
   */
  private checkAdapterHeaders(headers: Record<string, unknown>, adapter: string, context: ErrorContext): void {
    for (const [name, value] of Object.entries(headers)) {
      // Set to undefined: removed, as node's client would leave it out. A number or boolean: its text, as node sends it.
      if (value === undefined) { delete headers[name]; continue; }
      if (typeof value === 'number' || typeof value === 'boolean') headers[name] = String(value);
      const text = headers[name];
      const problem = !HEADER_NAME.test(name) ? `a header name node cannot send, ${JSON.stringify(name.slice(0, 60))}`
        : typeof text !== 'string' ? `header ${name} as ${text === null ? 'null' : typeof text === 'object' ? 'an object' : `a ${typeof text}`} (a header value is a string)`
          : !HEADER_VALUE.test(text) ? `header ${name} with a character no header may hold (a line break, a control character, or one beyond Latin-1)` : undefined;
      if (problem) throw new PermanentError('ERR_AUTH_ADAPTER', `the ${adapter} auth adapter set ${problem}`, { context });
    }
  }

  /**
   * A fetch must search for this contact: rendered for another person (every value of the contact changed), it must
   * come out different. One that does not (a misspelled `payload.serch`: JSONata drops the missing value, and a query
   * parameter that renders empty is left out) is a search without a criterion, and a CRM that then lists every lead
   * would have this contact's data written over a stranger's. Checked before auth: a signature or a token is no
   * criterion.
   */
  private async checkSearchesFor(request: OutgoingRequest, endpoint: CompiledEndpoint, vars: RequestVars, context: ErrorContext): Promise<void> {
    const own = vars.contact ?? this.contact;
    const contact = otherPerson(own);
    const leadId = vars.leadId === undefined ? undefined : `${vars.leadId}x`;
    const match = vars.match && { key: vars.match.key, value: vars.match.key === 'leadId' ? leadId! : contact[vars.match.key]! };
    // A mapping whose fetch can read the clock or $random: both rendered with them fixed (a `$millis()` in a search
    // body would tell any two apart). Else the request as built is compared.
    const bindings = this.mapping.fetchUsesClock ? await timelessBindings() : undefined;
    let same = request;
    let other: OutgoingRequest;
    if (bindings) {
      try {
        same = await this.renderRequest(endpoint, 'fetch', vars, await this.timelessPayload(own, vars.leadId, bindings), context, bindings);
      } catch {
        return; // Rendered with the clock fixed, the request fails: it is not one this check can compare.
      }
    }
    try {
      other = await this.renderRequest(endpoint, 'fetch', { contact, leadId, match }, await this.timelessPayload(contact, leadId, bindings), context, bindings);
    } catch {
      return; // Another person's values take another path through the mapping: the request depends on them.
    }
    // Headers are no criterion (a request id made from the contact would tell the two apart): the URL and the body.
    const spelled = (r: OutgoingRequest) => JSON.stringify([r.url.toString(), r.body]);
    if (spelled(other) !== spelled(same)) return;
    throw new PermanentError('ERR_FETCH_NO_CRITERION',
      `the fetch request is the same whoever it searches for (${request.method} ${this.mask(request.url.toString())}), so it could match anyone's lead: `
      + "check what endpoints.fetch's url, query and body search by (a misspelled field gives nothing, and is left out), "
      + 'or this contact has none of the values it searches by (a match chain, match: [email, phone], skips the keys a contact lacks)', { context });
  }

  /** A contact's payload (cleared fields applied) evaluated with `bindings`, once per contact and lead id a sync checks. */
  private async timelessPayload(contact: Contact, leadId: string | undefined, bindings: Record<string, unknown> | undefined): Promise<unknown> {
    const key = `${contact.contactId}\u0000${leadId ?? ''}\u0000${contact.phone}\u0000${contact.email ?? ''}`;
    if (this.checkPayloads.has(key)) return this.checkPayloads.get(key);
    const payload = await this.mapping.payload.evaluate({ contact, leadId, tenant: contact.tenant }, this.ctx({ step: 'map' }), bindings);
    const cleared = applyClearedFields(payload, this.options.previousPayload, this.mapping.definition.clearedFields ?? 'null');
    this.checkPayloads.set(key, cleared);
    return cleared;
  }

  /**
   * An endpoint's request before auth: URL template, query, headers and body, over `payload`. `bindings`: the body
   * and vars evaluated with them (checkSearchesFor's clock-free renderings).
   */
  private async renderRequest(endpoint: CompiledEndpoint, step: EndpointName, vars: RequestVars, payload: unknown, context: ErrorContext, bindings?: Record<string, unknown>): Promise<OutgoingRequest> {
    // Another contact than the sync's own (a fetch under the phone a lost create had, the fetch check's other person)
    // gets its own vars: they are made from the contact.
    const own = vars.contact === undefined || vars.contact === this.contact;
    const contactVars = own && bindings === undefined ? this.contactVars : await this.varsOf(vars.contact ?? this.contact, vars.leadId, bindings);
    const data = { contact: vars.contact ?? this.contact, leadId: vars.leadId, tenant: this.contact.tenant, match: vars.match, payload, vars: contactVars, secrets: this.namedSecrets };
    const path = endpoint.url.render(data, context);
    let url: URL;
    try {
      url = /^https?:\/\//i.test(path) ? new URL(path) : new URL(this.base + (path.startsWith('/') ? path : `/${path}`));
    } catch {
      // An absolute-URL template whose values (percent-encoded) cannot form a host: refused, never an unclassified TypeError.
      throw new MappingError([{ field: endpoint.url.field, message: `rendered ${JSON.stringify(path)}, which is not a valid URL` }], { file: this.mapping.file, code: 'ERR_URL_INVALID', context });
    }
    for (const [k, t] of endpoint.query) {
      const v = t.render(data, context);
      if (v !== '') url.searchParams.append(k, v);
    }
    const headers: Record<string, string> = { accept: 'application/json', 'user-agent': this.deps.userAgent ?? 'crm-sync/0.1' };
    for (const [k, t] of endpoint.headers) {
      const v = t.render(data, context);
      // A line break from the data (a contact's name) would be refused by node as it sends, on every attempt.
      if (!HEADER_VALUE.test(v)) throw new MappingError([{ field: t.field, message: `rendered a value with a character no header may hold (a line break, a control character, or one beyond Latin-1, such as Cyrillic or an emoji: encode it, e.g. with $encodeUrlComponent in a vars value): ${this.maskedExcerpt(v, 60)}` }], { file: this.mapping.file, code: 'ERR_MAPPING_TEMPLATE', context });
      // Header names are case-insensitive: the mapping's `Accept` replaces the default `accept`, not a second one.
      for (const name of Object.keys(headers)) if (name !== k && name.toLowerCase() === k.toLowerCase()) delete headers[name];
      headers[k] = v;
    }
    const body = endpoint.body === null ? undefined
      : endpoint.body === undefined ? (step === 'fetch' ? undefined : payload)
        : await endpoint.body.evaluate(data, context, bindings);
    return { method: endpoint.method, url, headers, body };
  }

  private async call(step: EndpointName, vars: RequestVars): Promise<{ res: ReaderInput; readers: CompiledEndpoint['readers']; context: ErrorContext }> {
    const { request, encoded, endpoint } = await this.buildRequest(step, vars);
    const maskedUrl = this.mask(request.url.toString());
    const context = this.ctx({ step, method: request.method, url: maskedUrl });
    const pacer = this.options.pacer;
    await pacer?.beforeRequest();
    const at = new Date(this.now()).toISOString();
    const sentAt = performance.now();
    let http: HttpResponse;
    try {
      http = await this.deps.http.send({
        step, method: request.method, url: request.url.toString(), headers: request.headers, body: encoded,
        timeoutMs: requestTimeoutMs(this.mapping), maxResponseBytes: this.mapping.definition.maxResponseBytes ?? 1_048_576,
      });
    } catch (err) {
      pacer?.afterResponse(undefined);
      const e = err instanceof SyncError ? err : new RetryableError('ERR_NETWORK', this.mask(String((err as Error)?.message ?? err)), { cause: err });
      Object.assign(e.context, context);
      // How long it took to fail (a timeout's full length): the call's answer time is what an operator compares.
      this.calls.push({ step, method: request.method, url: maskedUrl, durationMs: tenthsOfMs(performance.now() - sentAt), reason: this.mask(e.message), at });
      throw e;
    }
    const res: ReaderInput = { status: http.status, headers: http.headers, body: parseResponseBody(http.body, http.headers['content-type']) };
    const statusContext = { ...context, status: http.status };
    const record: CallRecord = { step, method: request.method, url: maskedUrl, status: http.status, durationMs: tenthsOfMs(http.durationMs), at };
    this.calls.push(record);
    // Read even without a pacer: `pacer?.afterResponse(await …)` would skip evaluating its argument.
    const rateLimit = await this.readRateLimit(res, statusContext);
    pacer?.afterResponse(rateLimit);
    if (http.status >= 400) record.reason = this.maskedExcerpt(await endpoint.readers.reason?.evaluate(res, statusContext).catch(() => undefined)) ?? this.maskedExcerpt(http.body, 200) ?? '';
    if (this.canRenewCredential() && (await this.credentialRefused(res, endpoint.readers, statusContext))) {
      // The credential expired or was revoked: get a new one and send the request again, once per sync. An adapter
      // that has nothing else to offer (a static token) gives the same one back: nothing is sent again.
      this.credentialRenewed = true;
      const refused = this.credential;
      if ((await this.credentialFor(step, true)) !== refused) return this.call(step, vars);
    }
    return { res, readers: endpoint.readers, context: statusContext };
  }

  /**
   * The credentialRejected reader's answer. It is read on every answer of a mapping whose adapter can renew its
   * credential, so one written for the refusal's body (`$contains(body, "expired")` on an object body) counts as
   * false where it cannot be evaluated, as the reason reader does: a success is never failed by it.
   */
  private async credentialRefused(res: ReaderInput, readers: CompiledEndpoint['readers'], context: ErrorContext): Promise<boolean> {
    return truthy(await readers.credentialRejected?.evaluate(res, context).catch(() => false));
  }

  private canRenewCredential(): boolean {
    return !this.credentialRenewed && this.mapping.auth?.credential !== undefined && this.deps.exchangeCredentials !== false;
  }

  /** What the mapping's rateLimit readers read from an answer; also kept as the sync's latest. */
  private async readRateLimit(res: ReaderInput, context: ErrorContext): Promise<RateLimitInfo | undefined> {
    const { remaining, resetMs } = this.mapping.rateLimit;
    if (!remaining && !resetMs) return undefined;
    const num = (v: unknown) => (typeof v === 'number' && Number.isFinite(v) ? v : undefined);
    const info: RateLimitInfo = {
      remaining: num(await remaining?.evaluate(res, context).catch(() => undefined)),
      resetMs: num(await resetMs?.evaluate(res, context).catch(() => undefined)),
    };
    if (info.remaining === undefined && info.resetMs === undefined) return undefined;
    this.rateLimit = info;
    return info;
  }
}

interface ReaderInput {
  status: number;
  headers: Record<string, string>;
  body: unknown;
}

/**
 * Another person than `c`, for checking that a request depends on whom it is for: every value changed, every field
 * kept (so the mapping takes the same path), the phone still a valid number.
 */
function otherPerson(c: Contact): Contact {
  const other = (v: string) => `${v}x`;
  const attributes: Contact['attributes'] = {};
  for (const [k, v] of Object.entries(c.attributes)) {
    setOwn(attributes, k, typeof v === 'string' ? other(v) : typeof v === 'number' ? v + 1 : typeof v === 'boolean' ? !v : v);
  }
  const out: Contact = { ...c, contactId: other(c.contactId), phone: c.phone === '+14155550100' ? '+14155550101' : '+14155550100', tags: c.tags.map(other), attributes };
  if (c.email !== undefined) out.email = `x${c.email}`;
  if (c.name !== undefined) out.name = other(c.name);
  return out;
}

/** What node's HTTP client accepts as a header name (an RFC 9110 token) and value (no line break or control byte). */
const HEADER_NAME = /^[!#$%&'*+.^_`|~0-9A-Za-z-]+$/;
const HEADER_VALUE = /^[\t\x20-\x7e\x80-\xff]*$/;

function isOutcomeLike(v: unknown): v is FlowOutcome {
  return typeof v === 'object' && v !== null && typeof (v as FlowOutcome).action === 'string';
}
