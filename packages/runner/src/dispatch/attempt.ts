import { failureDetails, RetryableError, SyncError, unionPayloads, type CallRecord, type ContactIdentity, type RequestPacer, type SyncEngine } from '@crm-sync/core';
import { LRUCache } from 'lru-cache';
import type { AttemptRecord, DeadLetter, RetryPolicy, TenantSettings } from '../api';
import type { Clock, TimerHandle } from '../clock';
import { decideRetry } from '../retry';
import type { Claim, CompleteInput, Store } from '../store/types';
import { LeaseLostError, type LeaseHeartbeat } from './lease-heartbeat';
import { isUnknownWriteOutcome, recheckAt, settleWindowMs } from './unconfirmed-write';

export type SyncEngineLike = Pick<SyncEngine, 'sync' | 'renderPayload' | 'readLead'>;

export interface AttemptDeps {
  store: Store;
  engine: SyncEngineLike;
  clock: Clock;
  retry: RetryPolicy;
  random?: () => number;
  /** Paces every CRM request of the attempt (the tenant's rate limit and the CRM's quota). */
  pacer?: RequestPacer;
  /** When a contact deferred because its person is held looks again (absent: every IDENTITY_RETRY_MS). */
  identityWaits?: IdentityWaits;
}

type AttemptError = NonNullable<AttemptRecord['error']>;

/** What one attempt came to, already recorded in the store. */
export type AttemptResult = AttemptOutcome | DeferredAttempt;

/** An attempt that ran: synced, unchanged or failed. */
export interface AttemptOutcome {
  record: AttemptRecord;
  durationMs: number;
  /** Set when the attempt failed and will be retried. */
  retry?: { delayMs: number };
  /** Set when the attempt sent the contact to the dead letters. */
  deadLetter?: NonNullable<DeadLetter['cause']>;
  /** The CRM asked the whole tenant to hold off this long (a 429). */
  tenantPauseMs?: number;
}

/**
 * An attempt that sent nothing: another sync held the person's phone or email (holdIdentity), so the contact was
 * handed back, due again in `delayMs`, and its concurrency slot freed. Nothing is recorded in its history.
 */
export interface DeferredAttempt {
  deferred: { delayMs: number };
  durationMs: number;
}

/**
 * One sync attempt for a claimed contact, start to finish: skip it if the payload is unchanged, else run the engine
 * (recording the create intent before a create is sent), then record the outcome — success, retry at a backoff, or
 * dead letter — in the store.
 *
 * Crash safety: the create intent is durable before the create request leaves. If the process dies (or the answer is
 * lost) before the lead id is stored, the next attempt passes `unconfirmedCreateAt`; with a fetch endpoint the flow
 * searches first and finds the lead the lost create made (and with `searchLagMs`, a not-found inside the lag is
 * retried rather than followed by a second create). A flow with no fetch endpoint cannot look before it creates:
 * the repeated create reaches the CRM, which must de-duplicate by phone/email itself (CONTRACT.md, "No Fetch endpoint").
 *
 * A write whose outcome is unknown (a timeout or network error once a create, update or upsert was sent) marks the
 * contact; so does a lease that ended without an outcome. While marked, the contact is never skipped as unchanged, and
 * a success begun within the settle window after the mark is followed by one more sync when the window ends
 * (./unconfirmed-write.ts): a late write that lands over a newer one is overwritten again.
 *
 * `heartbeat` keeps the claim's lease alive while the CRM is called; it stops before the outcome is written, which
 * ends the lease.
 */
export async function runAttempt(claim: Claim, tenant: TenantSettings, deps: AttemptDeps, heartbeat?: Pick<LeaseHeartbeat, 'stop'>): Promise<AttemptResult> {
  const { store, clock } = deps;
  const started = clock.now();
  const at = new Date(started).toISOString();
  let success: CompleteInput;
  // The payload this attempt rendered (and may have sent): what a write whose outcome is unknown may have set.
  let payload: unknown;
  // The claim with what a lost write of an earlier lease may have set recorded (recordLostWrite).
  let current = claim;
  try {
    // First: a failure of anything after it (the contact's own payload included) must not lose the lost write's.
    current = await recordLostWrite(claim, tenant, deps);
    const rendered = await deps.engine.renderPayload(tenant.mapping, claim.contact, claim.leadId);
    payload = rendered.payload;
    success = await syncOnce(current, tenant, deps, at, rendered);
  } catch (err) {
    heartbeat?.stop();
    if (err instanceof IdentityHeldError) {
      const delayMs = deps.identityWaits?.next(claim.contactId) ?? IDENTITY_RETRY_MS;
      const now = clock.now();
      await store.release(claim, now, { deferUntil: now + delayMs });
      return { deferred: { delayMs }, durationMs: now - started };
    }
    const details = failureDetails(err);
    return recordFailure(current, err, { calls: details?.calls ?? [], at, started, payload }, deps);
  }
  heartbeat?.stop();
  await store.complete(current, { ...success, recheckAt: recheckAt(current, started, tenant) }, clock.now());
  return { record: success.attempt, durationMs: clock.now() - started };
}

/**
 * A lease that ended without an outcome (a process killed mid-request, a hand-back) may have sent a write nobody
 * recorded: the snapshot it was syncing (Claim.lostWriteContact) is rendered and its payload joined into the claim's
 * unconfirmed payloads, recorded before anything is sent, so a field that write set is cleared if the contact no
 * longer has it. The claim as the rest of the attempt sees it.
 */
async function recordLostWrite(claim: Claim, tenant: TenantSettings, deps: AttemptDeps): Promise<Claim> {
  const lost = claim.lostWriteContact;
  if (lost === undefined) return claim;
  let payload: unknown;
  try {
    payload = (await deps.engine.renderPayload(tenant.mapping, lost, claim.leadId)).payload;
  } catch {
    // It does not render with the mapping as it is now (changed since): there is nothing to add.
    return claim;
  }
  const unconfirmedPayload = unionPayloads(claim.unconfirmedPayload, payload);
  if (!(await deps.store.recordUnconfirmedPayload(claim, unconfirmedPayload))) throw new LeaseLostError(claim);
  const { lostWriteContact: _recorded, ...rest } = claim;
  return { ...rest, unconfirmedPayload };
}

/** The CRM side of an attempt: nothing is written to the store here except the create intent. */
async function syncOnce(claim: Claim, tenant: TenantSettings, deps: AttemptDeps, at: string, rendered: Rendered): Promise<CompleteInput> {
  const { engine, store, clock } = deps;
  // Never while a write is unconfirmed or a resync was asked for: the CRM may hold something else than the stored hash says.
  if (claim.leadId !== undefined && rendered.hash === claim.payloadHash && claim.unconfirmedWriteAt === undefined && claim.resyncAt === undefined) {
    const attempt: AttemptRecord = { at, outcome: 'unchanged', leadId: claim.leadId, calls: [] };
    return { outcome: 'unchanged', leadId: claim.leadId, payloadHash: rendered.hash, payload: rendered.payload, attempt };
  }
  const identity = await holdIdentity(claim, tenant, deps);
  if (identity === 'held-elsewhere') throw new IdentityHeldError();
  deps.identityWaits?.clear(claim.contactId);
  let result: Awaited<ReturnType<SyncEngineLike['sync']>>;
  try {
    result = await engine.sync(tenant.mapping, claim.contact, {
      knownLeadId: claim.leadId,
      // Besides the last confirmed payload, what writes whose outcome is unknown may have set: cleared too if gone.
      previousPayload: unionPayloads(claim.lastPayload, claim.unconfirmedPayload),
      baseUrl: tenant.baseUrl,
      unconfirmedCreateAt: claim.unconfirmedCreateAt,
      unconfirmedCreateIdentity: claim.unconfirmedCreateIdentity,
      rendered,
      onCreateIntent: async () => {
        // A claim handed back (a stop) or taken over must not create: another claim may be matching the contact.
        const sent = { identity: identityOf(claim.contact), unconfirmedPayload: unionPayloads(claim.unconfirmedPayload, rendered.payload) };
        if (!(await store.markCreateIntent(claim, clock.now(), sent))) throw new LeaseLostError(claim);
      },
      pacer: deps.pacer,
    });
  } catch (err) {
    // A write whose outcome is unknown (a create that timed out) may still land: the person stays held until the
    // hold expires, so another contact of theirs does not fetch before it and create a second lead.
    if (isUnknownWriteOutcome(err)) identity?.keep();
    else await identity?.release(false);
    throw err;
  }
  await identity?.release(result.action === 'created');
  // A stale stored id (a merged or deleted lead, result.forgotLeadId) is simply replaced by the id the sync matched.
  const attempt: AttemptRecord = { at, outcome: result.action, leadId: result.leadId, calls: result.calls };
  if (result.warnings.length > 0) attempt.warnings = result.warnings;
  if (result.reason !== undefined) attempt.reason = result.reason;
  // A skip wrote nothing: the store keeps what the CRM was last told, or forgets the lead the CRM no longer had.
  const forgetLeadId = result.action === 'skipped' && result.forgotLeadId !== undefined;
  return { outcome: result.action, leadId: result.leadId, payloadHash: result.payloadHash, payload: result.payload, attempt, ...(forgetLeadId ? { forgetLeadId } : {}) };
}

/** When a contact deferred because its person is held looks again: first after this long, */
export const IDENTITY_RETRY_MS = 200;
/**
 * then twice as long each time it is deferred again, up to this. Short: a look costs a claim and a hand-back (no
 * fsync), and a long wait would let newly deferred contacts (looking again after 200 ms) take the person's hold first.
 */
export const IDENTITY_MAX_RETRY_MS = 1000;

/** Thrown by syncOnce, before anything is sent, when another sync holds the person: the attempt is deferred. */
class IdentityHeldError extends Error {}

/**
 * How many times each of a tenant's contacts has been deferred in a row (for the next delay), kept in memory: a
 * restart, or another runner claiming the contact, starts it again from IDENTITY_RETRY_MS. Bounded: the contacts
 * deferred longest ago are forgotten first.
 */
export class IdentityWaits {
  private readonly waits = new LRUCache<string, number>({ max: 10_000 });

  /** The delay before the contact looks again, counting this deferral. */
  next(contactId: string): number {
    const n = this.waits.get(contactId) ?? 0;
    this.waits.set(contactId, n + 1);
    return Math.min(IDENTITY_RETRY_MS * 2 ** n, IDENTITY_MAX_RETRY_MS);
  }

  /** The contact got its hold (or needed none): its next wait starts again from the first delay. */
  clear(contactId: string): void {
    this.waits.delete(contactId);
  }
}

type Rendered = Awaited<ReturnType<SyncEngineLike['renderPayload']>>;

/** The contact's phone and email, as a create intent records them. */
function identityOf(contact: Claim['contact']): ContactIdentity {
  return contact.email === undefined ? { phone: contact.phone } : { phone: contact.phone, email: contact.email };
}

/** The identities two contacts of one person share: what a fetch matches by. */
export function identityKeys(contact: Claim['contact']): string[] {
  return [`phone:${contact.phone}`, ...(contact.email ? [`email:${contact.email.trim().toLowerCase()}`] : [])];
}

/**
 * A contact with no stored lead id is matched by a fetch and, when nothing is found, created. Two contacts of one
 * person (the same phone or email under two contact ids: WhatsApp and the web form, or a backfill file) synced at
 * the same moment would both find nothing and create two leads. So the fetch-to-create stretch holds the person's
 * identities (Store.holdIdentities). A second sync that finds them held sends nothing: it is deferred (its contact
 * handed back and looked at again later, IdentityWaits, its concurrency slot freed), and once the first is done, its
 * fetch finds the first one's lead. The hold is renewed while its sync runs and lapses the settle window (twice the
 * request timeout) plus the mapping's `searchLagMs` after its last renewal (a holder that died). A lead created is
 * held on for `searchLagMs` more, while the CRM's search may not find it yet; after a create whose outcome is unknown
 * the hold is left to lapse. Flows that do not fetch (upsert, no-fetch) leave matching to the CRM and hold nothing.
 * 'held-elsewhere': another sync holds one of them.
 */
async function holdIdentity(claim: Claim, tenant: TenantSettings, deps: AttemptDeps): Promise<IdentityHold | 'held-elsewhere' | undefined> {
  const { store, clock } = deps;
  const definition = tenant.mapping.definition;
  if (claim.leadId !== undefined || tenant.mapping.endpoints.fetch === undefined || tenant.mapping.flow.requires.includes('upsert')) return undefined;
  const keys = identityKeys(claim.contact);
  const owner = claim.leaseToken;
  const searchLagMs = definition.searchLagMs ?? 0;
  const holdMs = settleWindowMs(tenant) + searchLagMs;
  const now = clock.now();
  if (!(await store.holdIdentities(claim.tenant, keys, owner, now + holdMs, now))) return 'held-elsewhere';
  // Renewed while the sync runs (a tenant's pacer may hold it past the hold's length), like the lease.
  let renewal: TimerHandle | undefined;
  const renew = () => {
    renewal = clock.setTimer(() => {
      const now = clock.now();
      store.holdIdentities(claim.tenant, keys, owner, now + holdMs, now).catch(() => undefined);
      renew();
    }, Math.max(1, Math.floor(holdMs / 3)));
  };
  renew();
  return {
    keep() {
      renewal?.cancel();
    },
    async release(created) {
      renewal?.cancel();
      // Best effort: a hold left behind expires on its own.
      const now = clock.now();
      const done = created && searchLagMs > 0 ? store.holdIdentities(claim.tenant, keys, owner, now + searchLagMs, now) : store.releaseIdentities(claim.tenant, keys, owner);
      await done.catch(() => undefined);
    },
  };
}

/** A sync's hold on the person's identities (holdIdentity). */
interface IdentityHold {
  /** Stops renewing it, and leaves it to expire (a create whose outcome is unknown may still land). */
  keep(): void;
  /** Stops renewing it and frees it (a created lead: held for the mapping's searchLagMs more). */
  release(created: boolean): Promise<void>;
}

async function recordFailure(claim: Claim, err: unknown, ctx: { calls: CallRecord[]; at: string; started: number; payload: unknown }, deps: AttemptDeps): Promise<AttemptOutcome> {
  const { store, clock } = deps;
  const error = describeError(err);
  const record = { at: ctx.at, outcome: 'failed' as const, leadId: claim.leadId, calls: ctx.calls, error };
  const now = clock.now();
  const retryAfterMs = err instanceof RetryableError ? err.retryAfterMs : undefined;
  const rateLimited = error.code === 'ERR_RATE_LIMITED' || error.status === 429;
  const unconfirmedWrite = isUnknownWriteOutcome(err);
  // A write whose outcome is unknown may have landed: its payload joins those the next sync clears fields against.
  const unconfirmed = unconfirmedWrite && ctx.payload !== undefined
    ? { unconfirmedWrite, unconfirmedPayload: unionPayloads(claim.unconfirmedPayload, ctx.payload) }
    : { unconfirmedWrite };
  let result: AttemptOutcome;
  if (err instanceof LeaseLostError) {
    // Another claim holds the contact now (this one was handed back or taken over): only the attempt is recorded;
    // the store leaves the schedule to the holder. Neither a retry nor a dead letter.
    await store.fail(claim, { attempt: record, deadCause: 'permanent', ...unconfirmed }, now);
    return { record, durationMs: now - ctx.started };
  }
  if (!error.retryable) {
    await store.fail(claim, { attempt: record, deadCause: 'permanent', ...unconfirmed }, now);
    result = { record, durationMs: now - ctx.started, deadLetter: 'permanent' };
  } else {
    const decision = decideRetry({ policy: deps.retry, failures: claim.failures + 1, failingSince: claim.failingSince ?? now, now, retryAfterMs, random: deps.random });
    if ('deadLetter' in decision) {
      await store.fail(claim, { attempt: record, deadCause: 'retries-exhausted', ...unconfirmed }, now);
      result = { record, durationMs: now - ctx.started, deadLetter: 'retries-exhausted' };
    } else {
      await store.fail(claim, { attempt: record, retryAt: decision.retryAt, ...unconfirmed }, now);
      result = { record, durationMs: now - ctx.started, retry: { delayMs: decision.delayMs } };
    }
  }
  // A 429 slows the whole tenant: for its Retry-After, else at least the first backoff step. (A used-up quota in
  // the CRM's headers pauses it as soon as it is read: see request-pacer.ts.)
  if (rateLimited) result.tenantPauseMs = retryAfterMs ?? deps.retry.baseMs;
  return result;
}

function describeError(err: unknown): AttemptError {
  if (err instanceof SyncError) {
    const c = err.context;
    const e: AttemptError = { code: err.code, message: err.message, retryable: err.retryable };
    if (c.status !== undefined) e.status = c.status;
    if (c.reason !== undefined) e.reason = c.reason;
    if (c.step !== undefined) e.step = c.step;
    return e;
  }
  // Not classified by the engine (a bug, or a failure outside it): retry with backoff; the budget bounds it.
  return { code: 'ERR_INTERNAL', message: String((err as Error)?.message ?? err), retryable: true };
}
