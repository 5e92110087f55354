import { mkdirSync } from 'node:fs';
import { dirname } from 'node:path';
import { randomUUID } from 'node:crypto';
import Database from 'better-sqlite3';
import type { Contact } from '@crm-sync/core';
import type { AttemptRecord, ContactStatus, DeadLetter, StatusCounts } from '../../api';
import { debounceDueAt } from '../../debounce/window';
import { GroupCommit } from '../group-commit';
import {
  createSettledAt, HISTORY_LENGTH, RESYNC_PAGE, unconfirmedRecheckAt, type AcceptItem, type AcceptOutcome, type Claim, type ClaimOptions, type CompleteInput, type CreateIntent, type FailInput,
  type ReleaseOptions, type ReleaseOwnersOptions, type ResyncOptions, type Store, type SyncedLead, type SyncedLeadsPage,
} from '../types';
import { contactKey, NewContactInserter, type NewContactRow } from './insert-new';
import { COUNTER_NAMES, openSchema, type CounterName } from './schema';

interface ContactRow {
  tenant: string;
  contact_id: string;
  contact: string;
  newest_ts: number | null;
  version: number;
  status: Status;
  due_at: number | null;
  pending_since: number | null;
  pending_due_at: number | null;
  lease_token: string | null;
  lease_until: number | null;
  lease_owner: string | null;
  claimed_version: number | null;
  failures: number;
  failing_since: number | null;
  last_error: string | null;
  dead_at: number | null;
  dead_cause: string | null;
  create_intent_at: number | null;
  /** JSON: Claim.unconfirmedCreateIdentity. */
  create_intent_identity: string | null;
  unconfirmed_write_at: number | null;
  /** JSON: Claim.unconfirmedPayload. */
  unconfirmed_payload: string | null;
  /**
   * The snapshot a lease ended without an outcome was syncing, when it is no longer `contact` (a change came since):
   * the claim after it hands it on as Claim.lostWriteContact. JSON.
   */
  claimed_contact: string | null;
  resync_at: number | null;
  lead_id: string | null;
  payload_hash: string | null;
  last_payload: string | null;
  last_outcome: string | null;
  attempts: number;
}

type Status = 'pending' | 'in-flight' | 'retrying' | 'dead' | 'synced';

/** A row as an attempt's outcome reads it: everything but the contact itself (the widest column, not needed there). */
type OutcomeRow = Omit<ContactRow, 'contact'>;

const SYNCED_COLUMNS = 'contact_id, contact, status, lead_id, payload_hash, last_payload';
type SyncedRow = Pick<ContactRow, 'contact_id' | 'contact' | 'status' | 'lead_id' | 'payload_hash' | 'last_payload'>;

function toSyncedLead(r: SyncedRow): SyncedLead | undefined {
  if (r.status !== 'synced' || r.lead_id === null || r.payload_hash === null) return undefined;
  return {
    contactId: r.contact_id, contact: JSON.parse(r.contact) as Contact, leadId: r.lead_id, payloadHash: r.payload_hash,
    payload: r.last_payload === null ? undefined : JSON.parse(r.last_payload),
  };
}

/** A write that records an attempt's outcome (complete, fail), queued for the next group commit; its status changes go to `deltas`. */
type SettleWrite = (deltas: CounterDeltas) => void;

export interface SqliteStoreOptions {
  /** Rows per group-commit transaction at most. Default 5000. */
  maxBatch?: number;
}

const iso = (ms: number) => new Date(ms).toISOString();
/** The contact's source time in ms (its `ts` was validated as ISO 8601), or null. */
const timeOf = (contact: Contact) => (contact.ts === undefined ? null : Date.parse(contact.ts));
const orUndefined = <T>(v: T | null): T | undefined => (v === null ? undefined : v);

/** Status changes accumulated inside one transaction and written to `counters` once at its end. */
class CounterDeltas {
  private readonly deltas = new Map<CounterName, number>();
  move(from: Status | undefined, to: Status | undefined): void {
    if (from === to) return;
    if (from) this.add(from, -1);
    if (to) this.add(to, 1);
  }
  add(name: CounterName, n: number): void {
    this.deltas.set(name, (this.deltas.get(name) ?? 0) + n);
  }
  /** Adds another transaction's (or savepoint's) changes to these. */
  addAll(other: CounterDeltas): void {
    for (const [name, n] of other.deltas) this.add(name, n);
  }
  entries(): Array<[CounterName, number]> {
    return [...this.deltas].filter(([, n]) => n !== 0);
  }
}

/**
 * The embedded store: one SQLite file in WAL mode. Several runner processes may share it (claims are taken in
 * IMMEDIATE transactions); nothing about pending contacts is held in memory, so a million of them cost disk, not RSS.
 */
export class SqliteStore implements Store {
  readonly db: Database.Database;
  private readonly stmts;
  private readonly acceptBatcher: GroupCommit<{ item: AcceptItem; now: number }, AcceptOutcome>;
  private readonly settleBatcher: GroupCommit<SettleWrite, { error: unknown } | undefined>;
  private readonly inserter: NewContactInserter;
  /** Runs one outcome's write inside the batch's transaction, in a savepoint of its own. */
  private readonly inSavepoint: (write: SettleWrite, deltas: CounterDeltas) => void;
  private leaseSeq = 0;
  private readonly leasePrefix = randomUUID().slice(0, 8);

  constructor(readonly file: string, opts: SqliteStoreOptions = {}) {
    if (file !== ':memory:') mkdirSync(dirname(file), { recursive: true });
    this.db = new Database(file);
    openSchema(this.db);
    const db = this.db;
    // Every column but the contact, as the table has them (columns added later included).
    const outcomeColumns = (db.pragma('table_info(contacts)') as Array<{ name: string }>).map((c) => c.name).filter((n) => n !== 'contact').join(', ');
    this.stmts = {
      get: db.prepare<[string, string], ContactRow>('SELECT * FROM contacts WHERE tenant = ? AND contact_id = ?'),
      getForOutcome: db.prepare<[string, string], OutcomeRow>(`SELECT ${outcomeColumns} FROM contacts WHERE tenant = ? AND contact_id = ?`),
      // A change to a contact in flight keeps the snapshot its lease claimed (claimed_contact): its write carries that.
      acceptChange: db.prepare(`UPDATE contacts SET claimed_contact = CASE WHEN status = 'in-flight' THEN coalesce(claimed_contact, contact) ELSE claimed_contact END,
        contact = @contact, newest_ts = @newest_ts, version = version + 1, status = @status,
        due_at = @due_at, pending_since = @pending_since, pending_due_at = @pending_due_at, failures = @failures,
        failing_since = @failing_since, dead_at = @dead_at, dead_cause = @dead_cause, lease_token = @lease_token, lease_until = @lease_until,
        lease_owner = @lease_owner WHERE tenant = @tenant AND contact_id = @contact_id`),
      markSeen: db.prepare('INSERT OR IGNORE INTO seen_events (tenant, event_id, accepted_at) VALUES (?, ?, ?)'),
      nextDue: db.prepare<[string], { due: number | null }>('SELECT min(due_at) AS due FROM contacts WHERE tenant = ? AND due_at IS NOT NULL'),
      due: db.prepare<[string, number, number], ContactRow>('SELECT * FROM contacts WHERE tenant = ? AND due_at <= ? ORDER BY due_at LIMIT ?'),
      lease: db.prepare(`UPDATE contacts SET status = 'in-flight', lease_token = @token, lease_until = @until, due_at = @until, lease_owner = @owner,
        claimed_version = version, pending_since = NULL, pending_due_at = NULL WHERE tenant = @tenant AND contact_id = @contact_id`),
      renew: db.prepare('UPDATE contacts SET lease_until = @until, due_at = @until WHERE tenant = @tenant AND contact_id = @contact_id AND lease_token = @token'),
      owners: db.prepare<[string], { owner: string }>('SELECT DISTINCT lease_owner AS owner FROM contacts WHERE tenant = ? AND lease_owner IS NOT NULL'),
      ownedBy: db.prepare<[string, string], ContactRow>('SELECT * FROM contacts WHERE tenant = ? AND lease_owner = ?'),
      intent: db.prepare<[number, string | null, string | null, string, string, string]>(`UPDATE contacts SET create_intent_at = ?, create_intent_identity = ?,
        unconfirmed_payload = coalesce(?, unconfirmed_payload) WHERE tenant = ? AND contact_id = ? AND lease_token = ?`),
      unconfirmedPayload: db.prepare<[string, string, string]>('UPDATE contacts SET unconfirmed_payload = ?, claimed_contact = NULL WHERE tenant = ? AND contact_id = ?'),
      // The lost snapshot is recorded; a change since the claim kept that one, so the claim's own (what it will send) is
      // kept now in its place.
      recordUnconfirmed: db.prepare<[string, string, string, string, string]>(`UPDATE contacts SET unconfirmed_payload = ?,
        claimed_contact = CASE WHEN version <> claimed_version THEN ? ELSE NULL END WHERE tenant = ? AND contact_id = ? AND lease_token = ?`),
      pendingWindow: db.prepare<[number, number, string, string]>('UPDATE contacts SET pending_since = ?, pending_due_at = ? WHERE tenant = ? AND contact_id = ?'),
      // A lease ends without an outcome: the snapshot it claimed is kept for the next claim (unless a change kept it already).
      keepClaimed: db.prepare<[string, string]>('UPDATE contacts SET claimed_contact = coalesce(claimed_contact, contact) WHERE tenant = ? AND contact_id = ?'),
      dropClaimed: db.prepare<[string, string]>('UPDATE contacts SET claimed_contact = NULL WHERE tenant = ? AND contact_id = ?'),
      defer: db.prepare('UPDATE contacts SET due_at = ? WHERE tenant = ? AND contact_id = ?'),
      unconfirmedWrite: db.prepare<[number | null, string, string]>('UPDATE contacts SET unconfirmed_write_at = ? WHERE tenant = ? AND contact_id = ?'),
      settle: db.prepare(`UPDATE contacts SET status = @status, due_at = @due_at, lease_token = NULL, lease_until = NULL, lease_owner = NULL,
        claimed_version = NULL, failures = @failures, failing_since = @failing_since, last_error = @last_error, dead_at = @dead_at,
        dead_cause = @dead_cause WHERE tenant = @tenant AND contact_id = @contact_id`),
      // A completed attempt that held the lease, in one statement (one rewrite of the row): the lead, the settled
      // status, the attempt counted. The same as storeLead, settle and countAttempt one after the other.
      completeOwn: db.prepare(`UPDATE contacts SET lead_id = @lead_id, payload_hash = @payload_hash, last_payload = @last_payload,
        create_intent_at = NULL, create_intent_identity = NULL, claimed_contact = NULL, unconfirmed_write_at = @unconfirmed_write_at,
        unconfirmed_payload = CASE WHEN @unconfirmed_write_at IS NULL THEN NULL ELSE unconfirmed_payload END, status = @status, due_at = @due_at, lease_token = NULL,
        lease_until = NULL, lease_owner = NULL, claimed_version = NULL, failures = 0, failing_since = NULL, last_error = NULL, dead_at = NULL,
        dead_cause = NULL, attempts = attempts + 1, last_outcome = @last_outcome,
        resync_at = CASE WHEN resync_at IS @claim_resync_at THEN NULL ELSE resync_at END WHERE tenant = @tenant AND contact_id = @contact_id`),
      storeLead: db.prepare(`UPDATE contacts SET lead_id = @lead_id, payload_hash = @payload_hash, last_payload = @last_payload,
        last_outcome = @last_outcome, create_intent_at = @create_intent_at WHERE tenant = @tenant AND contact_id = @contact_id`),
      countAttempt: db.prepare('UPDATE contacts SET attempts = attempts + 1, last_outcome = @outcome WHERE tenant = @tenant AND contact_id = @contact_id'),
      addAttempt: db.prepare('INSERT OR REPLACE INTO attempts (tenant, contact_id, n, record) VALUES (?, ?, ?, ?)'),
      trimAttempts: db.prepare('DELETE FROM attempts WHERE tenant = ? AND contact_id = ? AND n <= ?'),
      history: db.prepare<[string, string, number], { record: string }>('SELECT record FROM attempts WHERE tenant = ? AND contact_id = ? ORDER BY n DESC LIMIT ?'),
      dead: db.prepare<[], ContactRow>(`SELECT * FROM contacts WHERE status = 'dead' ORDER BY dead_at`),
      deadOf: db.prepare<[string], ContactRow>(`SELECT * FROM contacts WHERE status = 'dead' AND tenant = ? ORDER BY dead_at`),
      counter: db.prepare('UPDATE counters SET n = n + ? WHERE name = ?'),
      counters: db.prepare<[], { name: CounterName; n: number }>('SELECT name, n FROM counters'),
      pruneEvents: db.prepare('DELETE FROM seen_events WHERE accepted_at < ?'),
      page: db.prepare<[string, string, number], ContactRow>('SELECT * FROM contacts WHERE tenant = ? AND contact_id > ? ORDER BY contact_id LIMIT ?'),
      resyncSynced: db.prepare(`UPDATE contacts SET status = 'pending', due_at = @due_at, pending_since = @now, pending_due_at = @due_at, resync_at = @now
        WHERE tenant = @tenant AND contact_id = @contact_id`),
      resyncMark: db.prepare('UPDATE contacts SET resync_at = @now WHERE tenant = @tenant AND contact_id = @contact_id'),
      resyncInFlight: db.prepare(`UPDATE contacts SET resync_at = @now, version = version + 1, pending_since = coalesce(pending_since, @now),
        pending_due_at = coalesce(pending_due_at, @due_at) WHERE tenant = @tenant AND contact_id = @contact_id`),
      syncedPage: db.prepare<[string, string, number], SyncedRow>(`SELECT ${SYNCED_COLUMNS} FROM contacts WHERE tenant = ? AND contact_id > ? ORDER BY contact_id LIMIT ?`),
      syncedOne: db.prepare<[string, string], SyncedRow>(`SELECT ${SYNCED_COLUMNS} FROM contacts WHERE tenant = ? AND contact_id = ?`),
      holdJob: db.prepare(`INSERT INTO jobs (name, owner, until) VALUES (@name, @owner, @until)
        ON CONFLICT (name) DO UPDATE SET owner = excluded.owner, until = excluded.until WHERE jobs.owner = excluded.owner OR jobs.until <= @now`),
      releaseJob: db.prepare('DELETE FROM jobs WHERE name = ? AND owner = ?'),
      identityHolder: db.prepare<[string, string], { owner: string; until: number }>('SELECT owner, until FROM identity_locks WHERE tenant = ? AND key = ?'),
      holdIdentity: db.prepare(`INSERT INTO identity_locks (tenant, key, owner, until) VALUES (@tenant, @key, @owner, @until)
        ON CONFLICT (tenant, key) DO UPDATE SET owner = excluded.owner, until = excluded.until`),
      releaseIdentity: db.prepare('DELETE FROM identity_locks WHERE tenant = ? AND key = ? AND owner = ?'),
      pruneIdentities: db.prepare('DELETE FROM identity_locks WHERE until < ?'),
      // A write that always changes its page (an unchanged row writes nothing to the WAL, which would prove nothing).
      probe: db.prepare("INSERT INTO probes (name, at) VALUES ('store', ?) ON CONFLICT (name) DO UPDATE SET at = excluded.at"),
    };
    this.inserter = new NewContactInserter(db);
    this.inSavepoint = db.transaction((write: SettleWrite, deltas: CounterDeltas) => write(deltas));
    this.acceptBatcher = new GroupCommit((batch) => this.acceptBatch(batch), opts.maxBatch);
    this.settleBatcher = new GroupCommit((writes) => this.settleBatch(writes), opts.maxBatch);
  }

  accept(items: readonly AcceptItem[], now: number): Promise<AcceptOutcome[]> {
    return this.acceptBatcher.submit(items.map((item) => ({ item, now })));
  }

  /**
   * In three passes, which give what accepting the items one by one in order would: redelivered eventIds are
   * dropped; each contact's first item is tried as a new row (many rows per statement, no read); the items left
   * (contacts that exist, or a contact's later items in the batch) then update their rows in order.
   */
  private acceptBatch(batch: Array<{ item: AcceptItem; now: number }>): AcceptOutcome[] {
    return this.db.transaction(() => {
      const deltas = new CounterDeltas();
      const outcomes: Array<AcceptOutcome | undefined> = batch.map(() => undefined);
      const firsts: Array<{ at: number; row: NewContactRow }> = [];
      const seen = new Set<string>();
      batch.forEach(({ item: { contact, window }, now }, at) => {
        const { tenant, contactId, eventId } = contact;
        if (eventId !== undefined && this.stmts.markSeen.run(tenant, eventId, now).changes === 0) {
          outcomes[at] = 'duplicate';
          return;
        }
        const key = contactKey(tenant, contactId);
        if (seen.has(key)) return;
        seen.add(key);
        const dueAt = debounceDueAt(now, now, window);
        firsts.push({ at, row: { tenant, contactId, contact: JSON.stringify(contact), newestTs: timeOf(contact), dueAt, pendingSince: now } });
      });
      const inserted = this.inserter.insert(firsts.map((f) => f.row));
      const json = new Map<number, string>();
      firsts.forEach(({ at, row }, i) => {
        if (inserted[i]) {
          outcomes[at] = 'accepted';
          deltas.move(undefined, 'pending');
        } else json.set(at, row.contact);
      });
      const all = outcomes.map((outcome, at) => {
        if (outcome !== undefined) return outcome;
        const { item, now } = batch[at]!;
        return this.acceptChange(item.contact, json.get(at) ?? JSON.stringify(item.contact), item.window, now, deltas);
      });
      this.applyCounters(deltas);
      return all;
    }).immediate();
  }

  /** A contact whose row exists: newer state, or stale. */
  private acceptChange(contact: Contact, json: string, window: AcceptItem['window'], now: number, deltas: CounterDeltas): AcceptOutcome {
    const { tenant, contactId } = contact;
    const ts = timeOf(contact);
    const row = this.stmts.get.get(tenant, contactId)!;
    if (ts !== null && row.newest_ts !== null && ts < row.newest_ts) return 'stale';

    const pendingSince = row.pending_since ?? now;
    const pendingDue = debounceDueAt(pendingSince, now, window);
    const newestTs = row.newest_ts === null ? ts : ts === null ? row.newest_ts : Math.max(ts, row.newest_ts);
    const base = { tenant, contact_id: contactId, contact: json, newest_ts: newestTs, pending_since: pendingSince, pending_due_at: pendingDue };
    // In flight: the claim's outcome decides when it is due again (complete/fail read pending_due_at). A lapsed
    // lease (its runner died) is taken back, marked as an unconfirmed write: the contact waits for its window like any
    // other. Retrying: the backoff still holds. Dead or synced: a new change starts over.
    const leased = row.status === 'in-flight' && (row.lease_until ?? 0) > now;
    if (row.status === 'in-flight' && !leased) this.markUnconfirmedWrite(row, now);
    const failing = row.status === 'retrying' || (row.status === 'in-flight' && row.failures > 0);
    let next: Pick<ContactRow, 'status' | 'due_at' | 'failures' | 'failing_since' | 'dead_at' | 'dead_cause' | 'lease_token' | 'lease_until' | 'lease_owner'>;
    const noLease = { lease_token: null, lease_until: null, lease_owner: null };
    if (leased) next = { ...row };
    else if (failing) next = { ...row, status: 'retrying', due_at: Math.max(row.due_at ?? 0, pendingDue), ...noLease };
    else next = { status: 'pending', due_at: pendingDue, failures: 0, failing_since: null, dead_at: null, dead_cause: null, ...noLease };
    this.stmts.acceptChange.run({ ...base, ...pick(next), lease_token: next.lease_token, lease_until: next.lease_until, lease_owner: next.lease_owner });
    deltas.move(row.status, next.status);
    return 'accepted';
  }

  async nextDueAt(tenant: string): Promise<number | undefined> {
    return orUndefined(this.stmts.nextDue.get(tenant)?.due ?? null);
  }

  async claimDue(tenant: string, opts: ClaimOptions): Promise<Claim[]> {
    if (opts.limit <= 0) return [];
    return this.withoutFsync(() => this.db.transaction(() => {
      const deltas = new CounterDeltas();
      const claims: Claim[] = [];
      for (const row of this.stmts.due.all(tenant, opts.now, opts.limit)) {
        // Still in flight: its lease lapsed without an outcome, so its runner may have sent a write nobody recorded.
        if (row.status === 'in-flight') this.markUnconfirmedWrite(row, opts.now);
        // A create sent for it may not have landed yet: not before it has timed out (ClaimOptions.createTimeoutMs).
        const settledAt = createSettledAt(row.create_intent_at, row.unconfirmed_write_at, opts.createTimeoutMs);
        if (settledAt !== undefined && settledAt > opts.now) {
          if (row.status === 'in-flight') {
            this.settle(row, { ...row, status: row.failures > 0 ? 'retrying' : 'pending', due_at: settledAt }, deltas);
            this.stmts.keepClaimed.run(tenant, row.contact_id);
          } else this.stmts.defer.run(settledAt, tenant, row.contact_id);
          continue;
        }
        const token = `${opts.owner}:${this.leasePrefix}:${++this.leaseSeq}`;
        this.stmts.lease.run({ token, until: opts.now + opts.leaseMs, owner: opts.owner, tenant, contact_id: row.contact_id });
        deltas.move(row.status, 'in-flight');
        claims.push(toClaim(row, token));
      }
      this.applyCounters(deltas);
      return claims;
    }).immediate());
  }

  /** Committed with an fsync of its own, always: it is what keeps a lost create answer from becoming a second lead. */
  async markCreateIntent(claim: Claim, now: number, sent?: CreateIntent): Promise<boolean> {
    const identity = sent ? JSON.stringify(sent.identity) : null;
    const payload = sent?.unconfirmedPayload === undefined ? null : JSON.stringify(sent.unconfirmedPayload);
    return this.stmts.intent.run(now, identity, payload, claim.tenant, claim.contactId, claim.leaseToken).changes === 1;
  }

  complete(claim: Claim, input: CompleteInput, now: number): Promise<void> {
    return this.settleInGroup((deltas) => {
      const row = this.stmts.getForOutcome.get(claim.tenant, claim.contactId);
      if (!row) return;
      const own = row.lease_token === claim.leaseToken;
      // A skip wrote nothing: the lead, payload hash and payload stay what the CRM was last told, or go with a
      // forgotten lead (the CRM no longer had it).
      const skipped = input.outcome === 'skipped';
      const leadId = skipped ? (input.forgetLeadId ? null : row.lead_id) : input.leadId ?? row.lead_id;
      if (leadId !== null && row.lead_id === null) deltas.add('leads', 1);
      if (leadId === null && row.lead_id !== null) deltas.add('leads', -1);
      const payloadHash = !skipped ? input.payloadHash : leadId === null ? null : row.payload_hash;
      const lastPayload = !skipped ? JSON.stringify(input.payload ?? null) : leadId === null ? null : row.last_payload;
      if (own) {
        // The unconfirmed-write mark stays while a recheck is due, else it is cleared.
        const recheckAt = unconfirmedRecheckAt(row.unconfirmed_write_at, claim, input, now);
        const changed = row.version !== row.claimed_version;
        const dueAt = changed ? Math.max(now, row.pending_due_at ?? now) : recheckAt ?? null;
        const status: Status = dueAt === null ? 'synced' : 'pending';
        this.stmts.completeOwn.run({
          tenant: claim.tenant, contact_id: claim.contactId, lead_id: leadId, payload_hash: payloadHash,
          last_payload: lastPayload, unconfirmed_write_at: recheckAt === undefined ? null : row.unconfirmed_write_at,
          status, due_at: dueAt, last_outcome: input.attempt.outcome, claim_resync_at: claim.resyncAt ?? null,
        });
        deltas.move(row.status, status);
        this.addAttempt(row, input.attempt);
      } else {
        // The lease lapsed and someone else holds the contact now: keep only what prevents a duplicate lead, and mark
        // a write this attempt made, which may have landed after the new holder's.
        if (leadId !== row.lead_id) {
          this.stmts.storeLead.run({
            tenant: claim.tenant, contact_id: claim.contactId, lead_id: leadId, payload_hash: row.payload_hash,
            last_payload: row.last_payload, last_outcome: row.last_outcome, create_intent_at: row.create_intent_at,
          });
        }
        if (input.outcome !== 'unchanged' && !skipped) this.markUnconfirmedWrite(row, now);
        this.recordAttempt(row, input.attempt);
      }
    });
  }

  fail(claim: Claim, input: FailInput, now: number): Promise<void> {
    return this.settleInGroup((deltas) => {
      const row = this.stmts.getForOutcome.get(claim.tenant, claim.contactId);
      if (!row) return;
      if (input.unconfirmedWrite) this.markUnconfirmedWrite(row, now);
      if (row.lease_token === claim.leaseToken) {
        // Its outcome is recorded: a change meanwhile kept no lost write. What its write may have set is kept as a payload.
        if (input.unconfirmedWrite && input.unconfirmedPayload !== undefined) {
          this.stmts.unconfirmedPayload.run(JSON.stringify(input.unconfirmedPayload), claim.tenant, claim.contactId);
        } else if (row.claimed_contact !== null) this.stmts.dropClaimed.run(claim.tenant, claim.contactId);
        const failure = { failures: row.failures + 1, failing_since: row.failing_since ?? now, last_error: JSON.stringify(input.attempt.error) };
        const changed = row.version !== row.claimed_version;
        if (input.retryAt !== undefined) {
          this.settle(row, { status: 'retrying', due_at: input.retryAt, ...failure, dead_at: null, dead_cause: null }, deltas);
        } else if (changed) {
          // The contact changed while this attempt failed: the contract says a new change tries again.
          this.settle(row, { status: 'pending', due_at: Math.max(now, row.pending_due_at ?? now), ...failure, failures: 0, failing_since: null, dead_at: null, dead_cause: null }, deltas);
        } else {
          this.settle(row, { status: 'dead', due_at: null, ...failure, dead_at: now, dead_cause: input.deadCause ?? 'permanent' }, deltas);
        }
      }
      this.recordAttempt(row, input.attempt);
    });
  }

  async release(claim: Claim, now: number, opts: ReleaseOptions = {}): Promise<void> {
    const deferred = opts.deferUntil !== undefined;
    const hand = () => this.db.transaction(() => {
      const row = this.stmts.get.get(claim.tenant, claim.contactId);
      if (!row || row.lease_token !== claim.leaseToken) return;
      const deltas = new CounterDeltas();
      // Its attempt may still have a write on its way (unless it was deferred before sending anything); a create,
      // not settled before it has timed out.
      if (!deferred) this.leaseEndedWithoutOutcome(row, now);
      else if (row.claimed_contact !== null) this.stmts.dropClaimed.run(claim.tenant, claim.contactId);
      const dueAt = Math.max(now, opts.deferUntil ?? now, createSettledAt(row.create_intent_at, row.unconfirmed_write_at, opts.createTimeoutMs) ?? now);
      this.settle(row, { ...row, status: row.failures > 0 ? 'retrying' : 'pending', due_at: dueAt }, deltas);
      // Deferred, it is still waiting since it first was: a change meanwhile must not restart its maximum wait.
      if (deferred && claim.pendingSince !== undefined) {
        this.stmts.pendingWindow.run(Math.min(row.pending_since ?? claim.pendingSince, claim.pendingSince), dueAt, claim.tenant, claim.contactId);
      }
      this.applyCounters(deltas);
    }).immediate();
    // A deferral is frequent (one per look at a held person) and costs nothing if lost: the lease just lapses.
    if (deferred) this.withoutFsync(hand);
    else hand();
  }

  async recordUnconfirmedPayload(claim: Claim, payload: unknown): Promise<boolean> {
    const own = JSON.stringify(claim.contact);
    return this.withoutFsync(() => this.stmts.recordUnconfirmed.run(JSON.stringify(payload), own, claim.tenant, claim.contactId, claim.leaseToken)).changes === 1;
  }

  async renewLease(claim: Claim, now: number, leaseMs: number): Promise<boolean> {
    const { changes } = this.withoutFsync(() => this.stmts.renew.run({ until: now + leaseMs, tenant: claim.tenant, contact_id: claim.contactId, token: claim.leaseToken }));
    return changes === 1;
  }

  async leaseOwners(tenant: string): Promise<string[]> {
    return this.stmts.owners.all(tenant).map((r) => r.owner);
  }

  async releaseOwners(tenant: string, owners: readonly string[], opts: ReleaseOwnersOptions): Promise<number> {
    return this.db.transaction(() => {
      const deltas = new CounterDeltas();
      let released = 0;
      for (const owner of new Set(owners)) {
        for (const row of this.stmts.ownedBy.all(tenant, owner)) {
          // The dead owner may have sent a write before it died that the CRM has yet to apply; a create, not settled
          // before it has timed out.
          this.leaseEndedWithoutOutcome(row, opts.now);
          const dueAt = Math.max(opts.now, createSettledAt(row.create_intent_at, row.unconfirmed_write_at, opts.createTimeoutMs) ?? opts.now);
          this.settle(row, { ...row, status: row.failures > 0 ? 'retrying' : 'pending', due_at: dueAt }, deltas);
          released++;
        }
      }
      this.applyCounters(deltas);
      return released;
    }).immediate();
  }

  async deadLetters(tenant?: string): Promise<DeadLetter[]> {
    const rows = tenant === undefined ? this.stmts.dead.all() : this.stmts.deadOf.all(tenant);
    return rows.map((row) => ({
      tenant: row.tenant, contactId: row.contact_id, at: iso(row.dead_at ?? 0),
      error: JSON.parse(row.last_error ?? '{"code":"ERR_UNKNOWN","message":"no error recorded","retryable":false}'),
      attempts: row.failures, cause: (row.dead_cause ?? 'permanent') as DeadLetter['cause'],
    }));
  }

  async replay(tenant: string, contactId: string | 'all', now: number): Promise<number> {
    return this.db.transaction(() => {
      const rows = contactId === 'all' ? this.stmts.deadOf.all(tenant) : [this.stmts.get.get(tenant, contactId)].filter((r) => r?.status === 'dead') as ContactRow[];
      const deltas = new CounterDeltas();
      for (const row of rows) {
        this.settle(row, { status: 'pending', due_at: now, failures: 0, failing_since: null, last_error: row.last_error, dead_at: null, dead_cause: null }, deltas);
      }
      this.applyCounters(deltas);
      return rows.length;
    }).immediate();
  }

  async resync(tenant: string, contactIds: readonly string[] | 'all', opts: ResyncOptions): Promise<number> {
    let marked = 0;
    let made = 0;
    /** Marks the rows `read` returns, read inside the transaction (another process may share the file); returns them. */
    const mark = (read: () => Array<ContactRow | undefined>) => this.db.transaction(() => {
      const rows = read();
      const deltas = new CounterDeltas();
      for (const row of rows) {
        if (!row || row.status === 'dead') continue;
        const at = { tenant, contact_id: row.contact_id, now: opts.now };
        if (row.status === 'synced') {
          this.stmts.resyncSynced.run({ ...at, due_at: opts.now + Math.floor(made++ * opts.intervalMs) });
          deltas.move('synced', 'pending');
        } else if (row.status === 'in-flight') {
          this.stmts.resyncInFlight.run({ ...at, due_at: opts.now + Math.floor(made++ * opts.intervalMs) });
        } else {
          this.stmts.resyncMark.run(at);
        }
        marked++;
      }
      this.applyCounters(deltas);
      return rows;
    }).immediate();
    if (contactIds !== 'all') {
      for (let i = 0; i < contactIds.length; i += RESYNC_PAGE) mark(() => contactIds.slice(i, i + RESYNC_PAGE).map((id) => this.stmts.get.get(tenant, id)));
      return marked;
    }
    for (let after = ''; ;) {
      const rows = mark(() => this.stmts.page.all(tenant, after, RESYNC_PAGE));
      if (rows.length < RESYNC_PAGE) return marked;
      after = rows[rows.length - 1]!.contact_id;
      await new Promise((resolve) => setImmediate(resolve)); // a whole tenant: let other work in between pages
    }
  }

  /** Pages in contact id order; the cursor is the last id the page looked at. */
  async syncedLeads(tenant: string, page: { cursor?: string; limit: number }): Promise<SyncedLeadsPage> {
    const rows = this.stmts.syncedPage.all(tenant, page.cursor ?? '', page.limit);
    const leads = rows.flatMap((r) => toSyncedLead(r) ?? []);
    return rows.length < page.limit ? { leads } : { leads, cursor: rows[rows.length - 1]!.contact_id };
  }

  async syncedLead(tenant: string, contactId: string): Promise<SyncedLead | undefined> {
    const row = this.stmts.syncedOne.get(tenant, contactId);
    return row && toSyncedLead(row);
  }

  /** One statement, atomic against every process on the file. */
  async holdJob(name: string, owner: string, until: number, now: number): Promise<boolean> {
    return this.stmts.holdJob.run({ name, owner, until, now }).changes === 1;
  }

  async releaseJob(name: string, owner: string): Promise<void> {
    this.stmts.releaseJob.run(name, owner);
  }

  async holdIdentities(tenant: string, keys: readonly string[], owner: string, until: number, now: number): Promise<boolean> {
    return this.withoutFsync(() => this.db.transaction(() => {
      for (const key of keys) {
        const holder = this.stmts.identityHolder.get(tenant, key);
        if (holder && holder.owner !== owner && holder.until > now) return false;
      }
      for (const key of keys) this.stmts.holdIdentity.run({ tenant, key, owner, until });
      return true;
    }).immediate());
  }

  async releaseIdentities(tenant: string, keys: readonly string[], owner: string): Promise<void> {
    this.withoutFsync(() => this.db.transaction(() => {
      for (const key of keys) this.stmts.releaseIdentity.run(tenant, key, owner);
    }).immediate());
  }

  /** From the counters table, O(1). A contact whose runner died counts as in flight until its lease is taken over. */
  async counts(_now: number): Promise<StatusCounts> {
    const c = Object.fromEntries(COUNTER_NAMES.map((n) => [n, 0])) as Record<CounterName, number>;
    for (const { name, n } of this.stmts.counters.all()) c[name] = n;
    return { pending: c.pending, inFlight: c['in-flight'], retrying: c.retrying, deadLetters: c.dead, leads: c.leads };
  }

  async contactStatus(tenant: string, contactId: string, now: number): Promise<ContactStatus | undefined> {
    const row = this.stmts.get.get(tenant, contactId);
    if (!row) return undefined;
    const history = this.stmts.history.all(tenant, contactId, HISTORY_LENGTH).map((r) => JSON.parse(r.record) as AttemptRecord);
    const leaseLapsed = row.status === 'in-flight' && (row.lease_until ?? 0) <= now;
    const state: ContactStatus['state'] = leaseLapsed ? (row.failures > 0 ? 'retrying' : 'pending')
      : row.status === 'dead' ? 'dead-letter' : row.status;
    const status: ContactStatus = { tenant, contactId, state, attempts: row.attempts, history };
    if (row.lead_id !== null) status.leadId = row.lead_id;
    if (row.due_at !== null && state !== 'in-flight') status.dueAt = iso(row.due_at);
    if (row.payload_hash !== null) status.payloadHash = row.payload_hash;
    if (row.last_outcome !== null) status.lastOutcome = row.last_outcome as ContactStatus['lastOutcome'];
    if (row.resync_at !== null) status.resyncAt = iso(row.resync_at);
    return status;
  }

  async pruneEvents(before: number): Promise<number> {
    // Identity locks a dead runner left behind, long expired: pruned with the events (they expire in seconds).
    this.stmts.pruneIdentities.run(before);
    return this.stmts.pruneEvents.run(before).changes;
  }

  /** Committed with an fsync, as accepts are. */
  async probe(now: number): Promise<void> {
    this.db.transaction(() => this.stmts.probe.run(now)).immediate();
  }

  async close(): Promise<void> {
    this.acceptBatcher.flush();
    this.settleBatcher.flush();
    if (this.db.open) this.db.close();
  }

  /**
   * Attempts that finish together (the same event-loop turn) are recorded in one transaction, so one commit serves
   * them all; each resolves once that transaction commits. Each write runs in its own savepoint: one that throws is
   * rolled back and fails alone (its status changes are left out of the counters, which are written once per batch).
   */
  private async settleInGroup(write: SettleWrite): Promise<void> {
    const [outcome] = await this.settleBatcher.submit([write]);
    if (outcome) throw outcome.error;
  }

  private settleBatch(writes: SettleWrite[]): Array<{ error: unknown } | undefined> {
    return this.withoutFsync(() => this.db.transaction(() => {
      const batchDeltas = new CounterDeltas();
      const outcomes = writes.map((write) => {
        const deltas = new CounterDeltas();
        try {
          this.inSavepoint(write, deltas);
        } catch (error) {
          return { error };
        }
        batchDeltas.addAll(deltas);
        return undefined;
      });
      this.applyCounters(batchDeltas);
      return outcomes;
    }).immediate());
  }

  /**
   * Leases and attempt outcomes are committed without an fsync of their own (synchronous=NORMAL for that
   * transaction). In WAL mode they still survive a process crash, and the next fsync'd commit (an accept, a create
   * intent) makes them durable too, since the WAL is written in order. A power cut can lose only the last few, and
   * losing one costs a repeated attempt, never a change or a lead: the contact's state was fsync'd when it was
   * accepted, and a create's intent is fsync'd before the create is sent, so a repeated attempt fetches first.
   */
  private withoutFsync<T>(transaction: () => T): T {
    this.db.pragma('synchronous = NORMAL');
    try {
      return transaction();
    } finally {
      this.db.pragma('synchronous = FULL');
    }
  }

  /**
   * A lease ended without an outcome (handed back, its owner dead): a write it sent may still land (the mark), and the
   * snapshot it claimed is kept for the next claim (claimed_contact).
   */
  private leaseEndedWithoutOutcome(row: OutcomeRow, at: number): void {
    this.markUnconfirmedWrite(row, at);
    this.stmts.keepClaimed.run(row.tenant, row.contact_id);
  }

  /** Sets the unconfirmed-write mark (see ../types.ts) to `at`, never back. */
  private markUnconfirmedWrite(row: OutcomeRow, at: number): void {
    const mark = Math.max(at, row.unconfirmed_write_at ?? at);
    this.stmts.unconfirmedWrite.run(mark, row.tenant, row.contact_id);
    row.unconfirmed_write_at = mark;
  }

  private settle(row: OutcomeRow, next: Pick<ContactRow, 'status' | 'due_at' | 'failures' | 'failing_since' | 'last_error' | 'dead_at' | 'dead_cause'>, deltas: CounterDeltas): void {
    this.stmts.settle.run({ tenant: row.tenant, contact_id: row.contact_id, ...pick(next), last_error: next.last_error });
    deltas.move(row.status, next.status);
  }

  private recordAttempt(row: OutcomeRow, attempt: AttemptRecord): void {
    this.stmts.countAttempt.run({ tenant: row.tenant, contact_id: row.contact_id, outcome: attempt.outcome });
    this.addAttempt(row, attempt);
  }

  /** Appends the attempt (number row.attempts + 1) to the history, which keeps the last HISTORY_LENGTH. */
  private addAttempt(row: OutcomeRow, attempt: AttemptRecord): void {
    const n = row.attempts + 1;
    this.stmts.addAttempt.run(row.tenant, row.contact_id, n, JSON.stringify(attempt));
    if (n > HISTORY_LENGTH) this.stmts.trimAttempts.run(row.tenant, row.contact_id, n - HISTORY_LENGTH);
  }

  private applyCounters(deltas: CounterDeltas): void {
    for (const [name, n] of deltas.entries()) this.stmts.counter.run(n, name);
  }
}

function pick(r: Pick<ContactRow, 'status' | 'due_at' | 'failures' | 'failing_since' | 'dead_at' | 'dead_cause'>) {
  return { status: r.status, due_at: r.due_at, failures: r.failures, failing_since: r.failing_since, dead_at: r.dead_at, dead_cause: r.dead_cause };
}

function toClaim(row: ContactRow, leaseToken: string): Claim {
  const claim: Claim = { tenant: row.tenant, contactId: row.contact_id, leaseToken, contact: JSON.parse(row.contact) as Contact, failures: row.failures };
  if (row.lead_id !== null) claim.leadId = row.lead_id;
  if (row.payload_hash !== null) claim.payloadHash = row.payload_hash;
  if (row.last_payload !== null) claim.lastPayload = JSON.parse(row.last_payload);
  if (row.create_intent_at !== null) claim.unconfirmedCreateAt = row.create_intent_at;
  if (row.create_intent_identity !== null) claim.unconfirmedCreateIdentity = JSON.parse(row.create_intent_identity);
  if (row.unconfirmed_payload !== null) claim.unconfirmedPayload = JSON.parse(row.unconfirmed_payload);
  // A lease that lapsed without an outcome was syncing the snapshot it claimed: the one a change kept, or the contact.
  const lost = row.status === 'in-flight' ? row.claimed_contact ?? row.contact : row.claimed_contact;
  if (lost !== null) claim.lostWriteContact = JSON.parse(lost) as Contact;
  if (row.unconfirmed_write_at !== null) claim.unconfirmedWriteAt = row.unconfirmed_write_at;
  if (row.resync_at !== null) claim.resyncAt = row.resync_at;
  if (row.failing_since !== null) claim.failingSince = row.failing_since;
  if (row.pending_since !== null) claim.pendingSince = row.pending_since;
  return claim;
}
