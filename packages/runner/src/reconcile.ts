import { leadDifferences, SyncError, type FieldDifference, type RequestPacer } from '@crm-sync/core';
import type { TenantSettings } from './api';
import type { Clock } from './clock';
import type { SyncEngineLike } from './dispatch/attempt';
import type { Store, SyncedLead } from './store/types';

/**
 * What reading a synced contact's lead back from the CRM found:
 * - `match`: the CRM holds the lead with every field as last synced;
 * - `present`: the lead is there under the stored id; its fields were not compared (the mapping's fetch gives none,
 *   see the `leadFields` reader, or the store kept no payload);
 * - `differs`: the lead is there, and some fields are not what was last synced;
 * - `missing`: the CRM's fetch finds no lead for the contact (deleted, or never written);
 * - `other-lead`: the CRM's fetch finds another lead than the stored one (a duplicate, or a merge): for a person to resolve;
 * - `changed`: the contact changed or was synced again while its lead was read: nothing to conclude, its sync decides;
 * - `not-synced`: a contact asked for by id is not synced (pending, in flight, failing, unknown): nothing to compare;
 * - `failed`: the lead could not be read (the error says why).
 */
export type LeadCheckState = 'match' | 'present' | 'differs' | 'missing' | 'other-lead' | 'changed' | 'not-synced' | 'failed';

export const LEAD_CHECK_STATES: readonly LeadCheckState[] = ['match', 'present', 'differs', 'missing', 'other-lead', 'changed', 'not-synced', 'failed'];

/** The states a repair sends again: the sync updates the lead (or, when it is gone, matches and creates it again). */
const REPAIRABLE: ReadonlySet<LeadCheckState> = new Set(['differs', 'missing']);

export interface LeadCheck {
  contactId: string;
  state: LeadCheckState;
  /** The lead id the store holds (absent for `not-synced`). */
  leadId?: string;
  /** `differs`: the fields the CRM does not hold as last synced. */
  differences?: FieldDifference[];
  /** `other-lead`: the lead the CRM's fetch found. */
  crmLeadId?: string;
  /** `failed`: why (the engine's classified error; secrets masked). */
  error?: { code: string; message: string };
}

export interface ReconcileReport {
  tenant: string;
  checked: number;
  counts: Record<LeadCheckState, number>;
  /** Contacts marked to be sent again (`repair`): those that differ or are missing. */
  repaired: number;
  /** False when it stopped before the end (its `limit`, or its signal). */
  complete: boolean;
}

export interface ReconcileOptions {
  /** These contacts only (default: every synced contact of the tenant). */
  contactIds?: readonly string[];
  /** Check at most this many contacts. */
  limit?: number;
  /** CRM reads started per second: they share the CRM's rate limit with the syncs. */
  perSecond: number;
  /** Reads in flight at once. Default 4. */
  concurrency?: number;
  /** Mark the contacts that differ or are missing to be sent again (Store.resync). */
  repair?: boolean;
  /** Told of every check as it is made. */
  onCheck?: (check: LeadCheck) => void;
  /** Stops starting checks; those started finish, and the report says it is not complete. */
  signal?: AbortSignal;
}

export interface ReconcileDeps {
  store: Store;
  engine: SyncEngineLike;
  clock: Clock;
  tenant: TenantSettings;
  /**
   * The tenant's pacer, shared with its syncs: every read takes from the tenant's request budget (on Redis, shared by
   * all runners) and honours the CRM's quota, besides `perSecond`.
   */
  pacer?: RequestPacer;
  /** Sends these contacts again; returns how many were marked. */
  resync(contactIds: readonly string[]): Promise<number>;
}

/** Contacts read from the store per page. */
const PAGE = 200;
/** Repairs are marked in batches of this many (and at the end), so an interrupted run keeps what it found. */
const REPAIR_BATCH = 100;

/**
 * Compares the lead store with the CRM (DESIGN.md: records marked synced but never sent): every synced contact's lead
 * is read back with the mapping's fetch, as a sync would send it with the stored lead id, and the payload last synced
 * is compared with the lead's fields (the fetch's `leadFields` reader; see leadDifferences for the rules). Reads are
 * paced at `perSecond`, and within the tenant's request budget when `pacer` is given; nothing is written to the CRM. With `repair`, contacts that differ or are missing are marked
 * to be sent again by the runner; another lead in their place is only reported (sending again would not undo a
 * duplicate).
 */
export async function reconcileTenant(deps: ReconcileDeps, opts: ReconcileOptions): Promise<ReconcileReport> {
  if (!(opts.perSecond > 0)) throw new Error(`perSecond must be a positive number, got ${opts.perSecond}`);
  if (!deps.tenant.mapping.endpoints.fetch) {
    throw new Error(`tenant ${deps.tenant.name}: the mapping ${JSON.stringify(deps.tenant.mapping.name)} has no fetch endpoint, so its leads cannot be read back`);
  }
  const counts = Object.fromEntries(LEAD_CHECK_STATES.map((s) => [s, 0])) as Record<LeadCheckState, number>;
  const intervalMs = 1000 / opts.perSecond;
  const concurrency = Math.max(1, opts.concurrency ?? 4);
  const limit = opts.limit ?? Number.POSITIVE_INFINITY;
  const inFlight = new Set<Promise<void>>();
  const toRepair: string[] = [];
  // A contact is checked once: named twice, or listed twice by Redis's SCAN. (SQLite lists each once: no memory spent.)
  const listed = new Set<string>();
  let remember = opts.contactIds !== undefined;
  let checked = 0;
  let repaired = 0;
  let nextStart = deps.clock.now();
  let failure: { error: unknown } | undefined;
  let complete = true;

  const record = (check: LeadCheck) => {
    counts[check.state]++;
    if (opts.repair && REPAIRABLE.has(check.state)) toRepair.push(check.contactId);
    opts.onCheck?.(check);
  };
  const repairSome = async (all: boolean) => {
    if (toRepair.length === 0 || (!all && toRepair.length < REPAIR_BATCH)) return;
    repaired += await deps.resync(toRepair.splice(0));
  };
  /** Waits for the next read's turn; the signal cuts it short (a slow pace must not hold up a shutdown). */
  const sleep = (ms: number) => new Promise<void>((resolve) => {
    const done = () => {
      opts.signal?.removeEventListener('abort', onAbort);
      resolve();
    };
    const timer = deps.clock.setTimer(done, ms);
    const onAbort = () => {
      timer.cancel();
      done();
    };
    opts.signal?.addEventListener('abort', onAbort, { once: true });
  });
  /** False once no more checks may start. */
  const start = async (lead: SyncedLead | { contactId: string; notSynced: true }): Promise<boolean> => {
    const stopped = () => {
      if (checked < limit && !opts.signal?.aborted) return false;
      complete = false;
      return true;
    };
    if (failure || stopped()) return false;
    if (remember) {
      if (listed.has(lead.contactId)) return true;
      listed.add(lead.contactId);
    }
    if ('notSynced' in lead) {
      checked++;
      record({ contactId: lead.contactId, state: 'not-synced' });
      return true;
    }
    while (inFlight.size >= concurrency) await Promise.race(inFlight);
    const wait = nextStart - deps.clock.now();
    if (wait > 0) await sleep(wait);
    // Stopped while it waited: the read is not started.
    if (failure || stopped()) return false;
    checked++;
    nextStart = Math.max(nextStart, deps.clock.now()) + intervalMs;
    const p: Promise<void> = checkLead(deps, lead).then(record, (error: unknown) => { failure ??= { error }; })
      .finally(() => inFlight.delete(p));
    inFlight.add(p);
    await repairSome(false);
    return !failure;
  };

  try {
    if (opts.contactIds) {
      for (const id of opts.contactIds) {
        const lead = await deps.store.syncedLead(deps.tenant.name, id);
        if (!(await start(lead ?? { contactId: id, notSynced: true }))) break;
      }
    } else {
      let cursor: string | undefined;
      pages: do {
        const page = await deps.store.syncedLeads(deps.tenant.name, { cursor, limit: PAGE });
        remember ||= page.mayRepeat === true;
        for (const lead of page.leads) if (!(await start(lead))) break pages;
        cursor = page.cursor;
      } while (cursor !== undefined);
    }
  } finally {
    await Promise.all(inFlight);
  }
  if (failure) throw failure.error;
  await repairSome(true);
  return { tenant: deps.tenant.name, checked, counts, repaired, complete };
}

/** One contact: its lead read back and compared. Throws only when the store fails. */
async function checkLead(deps: ReconcileDeps, lead: SyncedLead): Promise<LeadCheck> {
  const { contactId, leadId } = lead;
  let reading;
  try {
    reading = await deps.engine.readLead(deps.tenant.mapping, lead.contact, { knownLeadId: leadId, baseUrl: deps.tenant.baseUrl, pacer: deps.pacer });
  } catch (err) {
    const error = err instanceof SyncError ? { code: err.code, message: err.message } : { code: 'ERR_INTERNAL', message: String((err as Error)?.message ?? err) };
    return { contactId, leadId, state: 'failed', error };
  }
  // A sync may have written to the CRM while it was read: then what the CRM holds says nothing about the lead store.
  const now = await deps.store.syncedLead(deps.tenant.name, contactId);
  if (!now || now.leadId !== leadId || now.payloadHash !== lead.payloadHash) return { contactId, leadId, state: 'changed' };
  if (!reading.found) return { contactId, leadId, state: 'missing' };
  if (reading.leadId !== leadId) return { contactId, leadId, state: 'other-lead', crmLeadId: reading.leadId };
  if (reading.fields === undefined || lead.payload === undefined) return { contactId, leadId, state: 'present' };
  const differences = leadDifferences(lead.payload, reading.fields);
  return differences.length === 0 ? { contactId, leadId, state: 'match' } : { contactId, leadId, state: 'differs', differences };
}
