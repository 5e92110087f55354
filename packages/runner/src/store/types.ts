/**
 * The runner's durable state behind one backend-agnostic interface: SQLite embedded (./sqlite), Redis for several
 * runners later. A backend proves itself by passing the shared behaviour suite (../__tests__/store-suite.ts).
 *
 * The model, per (tenant, contactId):
 * - the latest accepted contact snapshot, and the newest event `ts` accepted (older events change nothing);
 * - a schedule: `dueAt` is when the dispatcher should look at the contact next. For a pending change it is
 *   min(lastChange + quietMs, firstChange + maxWaitMs) (see ../debounce/window.ts); for a retry, the retry time;
 *   while claimed, the lease's expiry, so a contact whose runner died is simply due again when the lease lapses
 *   (the dispatcher renews a lease while its attempt runs, and a runner starting takes over at once the leases of
 *   dead runners on its host: releaseOwners);
 * - the lead store: lead id, hash and JSON of the last synced payload, last outcome, the last N attempts;
 * - failure state: consecutive failures, when failing began, the last error, dead-letter time;
 * - the create intent: set right before a create is sent (only while the claim's lease is held), cleared once its
 *   lead id is stored; until intent + the request timeout the contact is not claimed (ClaimOptions.createTimeoutMs);
 * - the unconfirmed-write mark: when the CRM last may have been sent a write whose outcome nobody recorded (a write
 *   that timed out or lost its answer, or a lease that ended without an outcome: a dead or stalled runner's attempt).
 *   The CRM may still apply such a write later, over a newer one, and the stored payload hash no longer says what the
 *   CRM holds. While it is set, syncs are never skipped as unchanged, and a success counts only once it was sent after
 *   the settle window (CompleteInput.recheckAt); then the mark is cleared.
 *
 * All times are milliseconds since the epoch and are passed in by the caller (the runner's clock), so a store never
 * reads the wall clock and tests can run on a manual one.
 */
import type { Contact, ContactIdentity } from '@crm-sync/core';
import type { AttemptRecord, ContactStatus, DeadLetter, StatusCounts } from '../api';
import type { DebounceWindow } from '../debounce/window';

/** How many attempts a contact's history keeps. */
export const HISTORY_LENGTH = 20;

export interface AcceptItem {
  /** A validated contact (phone in E.164). */
  contact: Contact;
  window: DebounceWindow;
}

/**
 * - `accepted`: the snapshot is now the contact's latest state and a sync is scheduled;
 * - `duplicate`: its eventId was accepted before (a redelivery): nothing changed;
 * - `stale`: its ts is older than the newest accepted for the contact: nothing changed.
 */
export type AcceptOutcome = 'accepted' | 'duplicate' | 'stale';

/** A contact handed to one dispatcher: nobody else claims it until the lease is completed, failed, released or lapses. */
export interface Claim {
  tenant: string;
  contactId: string;
  /** Identifies this lease; complete/fail/release with a stale token change only the lead store, never the schedule. */
  leaseToken: string;
  /** The latest accepted state at claim time. */
  contact: Contact;
  leadId?: string;
  payloadHash?: string;
  /** The payload last synced (for the mapping's cleared fields). */
  lastPayload?: unknown;
  /** A create was sent at this time and its lead id never stored: the answer may have been lost. */
  unconfirmedCreateAt?: number;
  /** The contact's phone and email when that create was sent (a fetch looks there too if they changed since). */
  unconfirmedCreateIdentity?: ContactIdentity;
  /**
   * The payloads of writes since the last confirmed one whose outcome is unknown (a create sent and not answered, a
   * timeout), joined: they may have landed, so what they set and the contact no longer has is cleared too.
   */
  unconfirmedPayload?: unknown;
  /**
   * The snapshot a lease that ended without an outcome (a process killed mid-request, a hand-back, a lapsed lease) was
   * syncing: its write may have landed, with a payload nobody recorded. Before sending anything, the attempt renders it
   * and records its payload into unconfirmedPayload (Store.recordUnconfirmedPayload).
   */
  lostWriteContact?: Contact;
  /** A write whose outcome is unknown may have been sent up to this time (the unconfirmed-write mark, see above). */
  unconfirmedWriteAt?: number;
  /** An operator asked at this time for the contact to be sent again (Store.resync): its sync is never skipped as unchanged. */
  resyncAt?: number;
  /** Consecutive failed attempts before this one. */
  failures: number;
  /** When the current run of failures began. */
  failingSince?: number;
  /** Since when the contact had been pending when it was claimed (the start of its maximum wait). */
  pendingSince?: number;
}

export interface ClaimOptions {
  now: number;
  /** At most this many contacts. */
  limit: number;
  leaseMs: number;
  /** Who holds the leases (one id per runner, see ../dispatch/lease-owner.ts): kept with each lease, so a runner can
   * tell which leases a dead process left behind (leaseOwners, releaseOwners). */
  owner: string;
  /**
   * The tenant's request timeout (its mapping's timeoutMs). A contact with a create sent and unconfirmed (its create
   * intent) is not claimed before that create has timed out, whatever made it due meanwhile (a lapsed lease, a
   * hand-back, a release of a dead runner's leases, a new change, a retry): it is due then instead. Fetching sooner
   * could miss the lead that create makes, and create a second one. Without it, such contacts are claimed when due.
   */
  createTimeoutMs?: number;
}

/** Release: the tenant's request timeout, for a released attempt that had sent a create (see ClaimOptions). */
export interface ReleaseOptions {
  createTimeoutMs?: number;
  /**
   * The attempt sent nothing (it found another sync holding the person's phone or email, Store.holdIdentities):
   * the contact is due again at this time, with no unconfirmed-write mark, and still pending since it was before the
   * claim (Claim.pendingSince), so a change meanwhile does not restart its maximum wait.
   */
  deferUntil?: number;
}

/**
 * When a contact with a create sent at `createIntentAt` may be synced again: once that create has timed out, if its
 * outcome is unknown (an unconfirmed write marked at or after the intent: a timeout, a lost answer, a lease that ended
 * without an outcome). A create the CRM answered, even with a failure, is settled: undefined.
 */
export function createSettledAt(createIntentAt: number | null | undefined, unconfirmedWriteAt: number | null | undefined, createTimeoutMs: number | undefined): number | undefined {
  if (createIntentAt === null || createIntentAt === undefined || createTimeoutMs === undefined) return undefined;
  if (unconfirmedWriteAt === null || unconfirmedWriteAt === undefined || unconfirmedWriteAt < createIntentAt) return undefined;
  return createIntentAt + createTimeoutMs;
}

export interface ResyncOptions {
  now: number;
  /** The n-th contact made pending is due at now + ⌊n × intervalMs⌋ (0: all at once). */
  intervalMs: number;
}

/** Contacts per transaction (SQLite) or script call (Redis) when a whole tenant is resynced. */
export const RESYNC_PAGE = 500;

/** A synced contact and what the CRM should hold of it (Store.syncedLeads, `crm-sync reconcile`). */
export interface SyncedLead {
  contactId: string;
  contact: Contact;
  leadId: string;
  payloadHash: string;
  /** The payload last synced; undefined if the store has none (a row from before payloads were kept). */
  payload: unknown;
}

export interface SyncedLeadsPage {
  leads: SyncedLead[];
  /** Where the next page starts; absent when this page was the last. */
  cursor?: string;
  /** A contact of this page may be listed again on another (Redis's SCAN): a caller that must not see it twice remembers the ids. */
  mayRepeat?: boolean;
}

export interface ReleaseOwnersOptions {
  now: number;
  /**
   * How long a create may still be on its way to the CRM after it was sent (the tenant's request timeout). A dead
   * owner's create may land after its death; a fetch before then would miss the lead and create a second one.
   */
  createTimeoutMs: number;
}

export interface CompleteInput {
  outcome: NonNullable<AttemptRecord['outcome']>;
  leadId?: string;
  payloadHash: string;
  payload: unknown;
  attempt: AttemptRecord;
  /**
   * The claim carried an unconfirmed-write mark and this attempt began before that write's settle window ended: the
   * late write may still land over this one. The contact is synced once more at this time (sooner if it changes),
   * and the mark stays until a sync begun after the window succeeds.
   */
  recheckAt?: number;
  /**
   * skipped after the stored lead id was found stale (the CRM no longer had it): the lead id goes, with the payload
   * hash and payload that were the CRM's. Any other skip keeps them (nothing was written).
   */
  forgetLeadId?: boolean;
}

/** What a create about to be sent is recorded with (Store.markCreateIntent). */
export interface CreateIntent {
  /** The contact's phone and email as the create sends them (Claim.unconfirmedCreateIdentity afterwards). */
  identity: ContactIdentity;
  /** Claim.unconfirmedPayload joined with the create's payload: it counts as possibly written until confirmed. */
  unconfirmedPayload: unknown;
}

export interface FailInput {
  attempt: AttemptRecord & { error: NonNullable<AttemptRecord['error']> };
  /** Try again at this time; absent: the contact goes to the dead letters. */
  retryAt?: number;
  /** Why it is dead-lettered (with no retryAt). */
  deadCause?: DeadLetter['cause'];
  /** A write (create, update, upsert) was sent and its outcome is unknown (timeout, lost answer): sets the unconfirmed-write mark. */
  unconfirmedWrite?: boolean;
  /** With unconfirmedWrite: Claim.unconfirmedPayload joined with that write's payload (stored while the lease is held). */
  unconfirmedPayload?: unknown;
}

export interface Store {
  /**
   * Makes contact snapshots durable: resolves only after they are committed (a backend may batch concurrent calls
   * into one commit). Outcomes are in input order; items are applied in order, so a batch may hold the same
   * contact or eventId twice. A change to a contact whose lease lapsed takes it back, marked as an unconfirmed write.
   */
  accept(items: readonly AcceptItem[], now: number): Promise<AcceptOutcome[]>;
  /** The earliest dueAt of the tenant's contacts (including expired leases), if any. */
  nextDueAt(tenant: string): Promise<number | undefined>;
  /**
   * Claims up to `limit` of the tenant's contacts due at `now`, earliest first, each with a lease. A contact whose
   * lease lapsed without an outcome is marked (unconfirmed write at `now`) as it is claimed again.
   */
  claimDue(tenant: string, opts: ClaimOptions): Promise<Claim[]>;
  /**
   * Records that a create is about to be sent for the claimed contact (durable before it resolves). False, and
   * nothing recorded, when the claim's lease is no longer held (handed back at a stop, or taken over): the create
   * must not be sent then, as another claim may be syncing the contact without knowing of it.
   */
  markCreateIntent(claim: Claim, now: number, sent?: CreateIntent): Promise<boolean>;
  /**
   * A sync succeeded (or was unchanged): stores the lead, clears failures and the create intent (with its identity),
   * and the unconfirmed payloads once the mark is cleared. If the contact
   * changed while claimed, it is pending again with the window of those changes (never due before `now`). With an
   * unconfirmed-write mark, the mark is cleared only when the success is confirmed (no `recheckAt`, and no newer mark
   * set while claimed); otherwise the contact is pending again (at recheckAt, or at once for a newer mark). A complete
   * whose lease was lost keeps the lead id, and marks the contact when it wrote to the CRM.
   */
  complete(claim: Claim, input: CompleteInput, now: number): Promise<void>;
  /** A sync failed: retry at `retryAt`, or dead letter. A change that arrived while claimed makes it pending instead of dead. */
  fail(claim: Claim, input: FailInput, now: number): Promise<void>;
  /**
   * Hands a claim back unfinished (shutdown): due again at once, with the unconfirmed-write mark set (its write may be
   * on its way); with a create sent (the create intent), not before that create has timed out (`opts.createTimeoutMs`).
   * With `opts.deferUntil`, the attempt sent nothing: due at that time, unmarked.
   */
  release(claim: Claim, now: number, opts?: ReleaseOptions): Promise<void>;
  /**
   * Sets the claim's unconfirmedPayload (Claim.unconfirmedPayload joined with the payload of its lostWriteContact) and
   * forgets the lost snapshot, while the lease is held (false otherwise, nothing changed). Not fsynced on its own.
   */
  recordUnconfirmedPayload(claim: Claim, payload: unknown): Promise<boolean>;
  /**
   * Extends a held lease to `now + leaseMs` (and the contact's dueAt with it): the dispatcher's heartbeat while the
   * attempt runs. A lease that lapsed but was taken by nobody is still held. False: the lease was lost (another
   * claim, or a change after it lapsed, took the contact) or already ended; nothing changed.
   */
  renewLease(claim: Claim, now: number, leaseMs: number): Promise<boolean>;
  /** The distinct owners (ClaimOptions.owner) of the tenant's current leases, lapsed or not. */
  leaseOwners(tenant: string): Promise<string[]>;
  /**
   * Ends every lease these owners hold on the tenant's contacts, for owners known to be dead: their contacts need not
   * wait for the leases to lapse. Each is due as `release` makes it (at `now`, marked as an unconfirmed write), except
   * one whose create was sent and not confirmed: once that create has timed out (createSettledAt), as claimDue would
   * hold it back until then anyway. Never touches another owner's lease.
   * Returns how many.
   */
  releaseOwners(tenant: string, owners: readonly string[], opts: ReleaseOwnersOptions): Promise<number>;
  deadLetters(tenant?: string): Promise<DeadLetter[]>;
  /** Makes dead-lettered contacts due now with a fresh retry budget. Returns how many. */
  replay(tenant: string, contactId: string | 'all', now: number): Promise<number>;
  /**
   * Sends contacts again even if their payload has not changed (after a mapping change, or to repair what a CRM
   * lost): marks each (resyncAt = now) so its next sync is never skipped as unchanged; the mark is cleared by a
   * successful sync claimed after it. A synced contact becomes pending, the n-th marked due at now + n ×
   * intervalMs (so a whole tenant trickles out and live changes are not stuck behind it); a pending or retrying one
   * keeps its schedule; one in flight is synced once more after its attempt, as for a change that arrived meanwhile
   * (due then, or at its place in the trickle if later).
   * Dead letters are left to `replay`; unknown contacts are skipped. 'all' goes through the tenant's contacts in
   * pages (each page atomic, not the whole). Returns how many were marked.
   */
  resync(tenant: string, contactIds: readonly string[] | 'all', opts: ResyncOptions): Promise<number>;
  /**
   * The tenant's synced contacts that have a lead id, a page at a time: `cursor` from the previous page, absent for
   * the first. A page looks at up to about `limit` of the tenant's contacts and holds those that are synced, so it may
   * hold fewer (even none) before the end; the last page has no cursor. Redis may list a contact twice (SCAN), and
   * says so on its pages (mayRepeat).
   */
  syncedLeads(tenant: string, page: { cursor?: string; limit: number }): Promise<SyncedLeadsPage>;
  /** One contact as syncedLeads lists it; undefined when it is not synced or has no lead id. */
  syncedLead(tenant: string, contactId: string): Promise<SyncedLead | undefined>;
  /**
   * A named lease among the runners sharing this store, for a job one of them at a time should run (a tenant's
   * scheduled reconcile pass): taken, or extended, to `until` when it is free, lapsed (`until` ≤ `now`) or already
   * held by `owner`. False: another owner holds it.
   */
  holdJob(name: string, owner: string, until: number, now: number): Promise<boolean>;
  /** Frees the named lease if `owner` holds it. */
  releaseJob(name: string, owner: string): Promise<void>;
  /**
   * Advisory locks on a person's identities within a tenant (`phone:+919876543210`, `email:priya@example.com`): held
   * from a sync's fetch to its create, so two contacts of one person (WhatsApp and the web form) synced at once do not
   * both find nothing and create two leads. All the keys or none: true when `owner` holds every one until `until`
   * now; false when another owner holds one that has not expired (nothing is taken then). Not made durable on its
   * own (a power cut may drop one: it only narrows a race).
   */
  holdIdentities(tenant: string, keys: readonly string[], owner: string, until: number, now: number): Promise<boolean>;
  /** Frees those of the keys `owner` holds. */
  releaseIdentities(tenant: string, keys: readonly string[], owner: string): Promise<void>;
  counts(now: number): Promise<StatusCounts>;
  contactStatus(tenant: string, contactId: string, now: number): Promise<ContactStatus | undefined>;
  /** Forgets eventIds accepted before `before` (redeliveries older than that are no longer recognised). Returns how many. */
  pruneEvents(before: number): Promise<number>;
  /**
   * One small write of its own, committed as an accept is (durably), that changes nothing the runner reads: whether
   * the store takes writes now. The daemon asks while its store's writes fail (disk full, read-only, Redis out of
   * memory), to tell when they work again (/readyz).
   */
  probe(now: number): Promise<void>;
  /**
   * Optional, for a store over a connection (Redis): tells each time the connection is lost and back. While it is
   * lost, calls wait for it (they are queued), so nothing fails that a write's outcome could show: /readyz and the
   * store gauge follow this instead.
   */
  onConnectionChange?(listener: (connected: boolean) => void): void;
  close(): Promise<void>;
}

/**
 * Whether a successful attempt leaves its contact's unconfirmed-write mark (`mark`, as the store holds it now) in
 * place, and when the contact is synced again if so; undefined: the success confirms what the CRM holds, and the mark
 * is cleared. A mark other than the claim's was set while the attempt ran (a write of a lost lease): sync again at
 * once. Otherwise the attempt's own `recheckAt`. The Redis store's COMPLETE script mirrors it.
 */
export function unconfirmedRecheckAt(mark: number | null, claim: Claim, input: CompleteInput, now: number): number | undefined {
  if (mark === null) return undefined;
  if (mark !== claim.unconfirmedWriteAt) return now;
  return input.recheckAt === undefined ? undefined : Math.max(now, input.recheckAt);
}
