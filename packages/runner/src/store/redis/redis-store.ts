import { randomUUID } from 'node:crypto';
import type { Redis } from 'ioredis';
import type { Contact } from '@crm-sync/core';
import type { AttemptRecord, ContactStatus, DeadLetter, StatusCounts } from '../../api';
import {
  HISTORY_LENGTH, RESYNC_PAGE, type AcceptItem, type AcceptOutcome, type Claim, type ClaimOptions, type CompleteInput, type CreateIntent, type FailInput, type ReleaseOptions, type ReleaseOwnersOptions,
  type ResyncOptions, type Store, type SyncedLead, type SyncedLeadsPage,
} from '../types';
import type { RateLimitFactory } from '../../dispatch/rate-limit';
import { checkRedis, connectRedis, type RedisPersistence } from './connect';
import { redisRateLimits } from './redis-rate-limit';
import { STORE_SCRIPTS, type StoreScriptName } from './scripts';

export interface RedisStoreOptions {
  /** Prefix of every key, so several deployments (or tests) can share one Redis database. Default `crm-sync:`. */
  prefix?: string;
}

/** A contact's hash as the scripts store it: the SQLite columns, every value a string, NULL = absent. */
type Row = Partial<Record<
  'contact_id' | 'contact' | 'status' | 'due_at' | 'lease_token' | 'lease_until' | 'failures' | 'failing_since' | 'last_error' |
  'dead_at' | 'dead_cause' | 'pending_since' | 'create_intent_at' | 'create_intent_identity' | 'unconfirmed_write_at' | 'unconfirmed_payload' | 'claimed_contact' | 'resync_at' |
  'lead_id' | 'payload_hash' | 'last_payload' | 'last_outcome' | 'attempts', string>>;

type ScriptArg = string | number;

const iso = (ms: number) => new Date(ms).toISOString();
const int = (v: string | undefined): number | undefined => (v === undefined ? undefined : Number(v));
const UNKNOWN_ERROR = { code: 'ERR_UNKNOWN', message: 'no error recorded', retryable: false };

/**
 * The store for several runners: all state in one Redis (see ./scripts.ts for the data model). Every change is one
 * Lua script, atomic on the server, so runners never see half a change and a claim is taken by exactly one of them.
 * A write resolves once Redis has acknowledged it: with `appendfsync always` that means fsynced, with `everysec`
 * in Redis's memory and its AOF within a second (docs/scaling.md).
 */
export class RedisStore implements Store {
  private leaseSeq = 0;
  private readonly leasePrefix = randomUUID().slice(0, 8);
  private readonly prefix: string;

  /** Set by close(): the connection's end from then on is ours, not an outage. */
  private closing = false;

  private constructor(readonly redis: Redis, readonly persistence: RedisPersistence, opts: RedisStoreOptions) {
    this.prefix = opts.prefix ?? 'crm-sync:';
    for (const [name, lua] of Object.entries(STORE_SCRIPTS)) redis.defineCommand(name, { numberOfKeys: 0, lua });
  }

  /** Connects to `redis://host:port/db` and refuses a server that may evict keys (see ./connect.ts). */
  static async open(url: string, opts: RedisStoreOptions = {}): Promise<RedisStore> {
    const redis = connectRedis(url);
    try {
      return new RedisStore(redis, await checkRedis(redis, url), opts);
    } catch (err) {
      redis.disconnect();
      throw err;
    }
  }

  /** Per-tenant request budgets and 429 pauses shared by every runner on this Redis (./redis-rate-limit.ts). */
  rateLimits(): RateLimitFactory {
    return redisRateLimits(this.redis, this.prefix);
  }

  async accept(items: readonly AcceptItem[], now: number): Promise<AcceptOutcome[]> {
    if (items.length === 0) return [];
    const args = items.flatMap(({ contact, window }) => {
      const ts = contact.ts === undefined ? '' : Date.parse(contact.ts);
      return [contact.tenant, contact.contactId, contact.eventId ?? '', ts, JSON.stringify(contact), window.quietMs, window.maxWaitMs];
    });
    return (await this.run('crmSyncAccept', now, ...args)) as AcceptOutcome[];
  }

  async nextDueAt(tenant: string): Promise<number | undefined> {
    const [, score] = await this.redis.zrange(this.key('due', tenant), 0, 0, 'WITHSCORES');
    return int(score);
  }

  async claimDue(tenant: string, opts: ClaimOptions): Promise<Claim[]> {
    if (opts.limit <= 0) return [];
    const base = `${opts.owner}:${this.leasePrefix}:${++this.leaseSeq}`;
    const rows = (await this.run('crmSyncClaim', tenant, opts.now, opts.limit, opts.leaseMs, base, opts.owner, opts.createTimeoutMs ?? '')) as string[];
    return rows.map((json) => toClaim(tenant, JSON.parse(json) as Row));
  }

  async markCreateIntent(claim: Claim, now: number, sent?: CreateIntent): Promise<boolean> {
    const payload = sent?.unconfirmedPayload === undefined ? '' : JSON.stringify(sent.unconfirmedPayload);
    return (await this.run('crmSyncCreateIntent', claim.tenant, claim.contactId, now, claim.leaseToken, sent ? JSON.stringify(sent.identity) : '', payload)) === 1;
  }

  async complete(claim: Claim, input: CompleteInput, now: number): Promise<void> {
    await this.run('crmSyncComplete', claim.tenant, claim.contactId, claim.leaseToken, now, input.outcome, input.leadId ?? '',
      input.payloadHash, JSON.stringify(input.payload ?? null), JSON.stringify(input.attempt), input.attempt.outcome, input.recheckAt ?? '',
      claim.unconfirmedWriteAt ?? '', claim.resyncAt ?? '', input.forgetLeadId ? '1' : '');
  }

  async fail(claim: Claim, input: FailInput, now: number): Promise<void> {
    await this.run('crmSyncFail', claim.tenant, claim.contactId, claim.leaseToken, now, input.retryAt ?? '', input.deadCause ?? 'permanent',
      JSON.stringify(input.attempt.error), JSON.stringify(input.attempt), input.attempt.outcome, input.unconfirmedWrite ? '1' : '',
      input.unconfirmedWrite && input.unconfirmedPayload !== undefined ? JSON.stringify(input.unconfirmedPayload) : '');
  }

  async release(claim: Claim, now: number, opts: ReleaseOptions = {}): Promise<void> {
    await this.run('crmSyncRelease', claim.tenant, claim.contactId, claim.leaseToken, now, opts.createTimeoutMs ?? '', opts.deferUntil ?? '',
      claim.pendingSince ?? '');
  }

  async recordUnconfirmedPayload(claim: Claim, payload: unknown): Promise<boolean> {
    return (await this.run('crmSyncRecordUnconfirmed', claim.tenant, claim.contactId, claim.leaseToken, JSON.stringify(payload), JSON.stringify(claim.contact))) === 1;
  }

  async renewLease(claim: Claim, now: number, leaseMs: number): Promise<boolean> {
    return (await this.run('crmSyncRenew', claim.tenant, claim.contactId, claim.leaseToken, now, leaseMs)) === 1;
  }

  async leaseOwners(tenant: string): Promise<string[]> {
    return [...new Set(await this.redis.hvals(this.key('leases', tenant)))];
  }

  async releaseOwners(tenant: string, owners: readonly string[], opts: ReleaseOwnersOptions): Promise<number> {
    if (owners.length === 0) return 0;
    return (await this.run('crmSyncReleaseOwners', tenant, opts.now, opts.createTimeoutMs, ...new Set(owners))) as number;
  }

  async deadLetters(tenant?: string): Promise<DeadLetter[]> {
    const tenants = tenant === undefined ? (await this.redis.smembers(this.key('tenants'))).sort() : [tenant];
    const letters: DeadLetter[] = [];
    for (const t of tenants) {
      const ids = await this.redis.zrange(this.key('dead', t), 0, -1);
      if (ids.length === 0) continue;
      const pipeline = this.redis.pipeline();
      for (const id of ids) pipeline.hmget(this.contactKey(t, id), 'dead_at', 'last_error', 'failures', 'dead_cause');
      const rows = (await pipeline.exec()) ?? [];
      rows.forEach(([err, fields], i) => {
        if (err) throw err;
        const [deadAt, lastError, failures, cause] = fields as Array<string | null>;
        letters.push({
          tenant: t, contactId: ids[i], at: iso(Number(deadAt ?? 0)), error: lastError ? JSON.parse(lastError) : UNKNOWN_ERROR,
          attempts: Number(failures ?? 0), cause: (cause ?? 'permanent') as DeadLetter['cause'],
        });
      });
    }
    // Oldest first across tenants, as the embedded store lists them.
    return letters.sort((a, b) => a.at.localeCompare(b.at));
  }

  async replay(tenant: string, contactId: string | 'all', now: number): Promise<number> {
    return (await this.run('crmSyncReplay', tenant, contactId === 'all' ? '' : contactId, now)) as number;
  }

  async resync(tenant: string, contactIds: readonly string[] | 'all', opts: ResyncOptions): Promise<number> {
    let marked = 0;
    let made = 0;
    const mark = async (ids: readonly string[]) => {
      if (ids.length === 0) return;
      const [m, n] = (await this.run('crmSyncResync', tenant, opts.now, opts.intervalMs, made, ...ids)) as [number, number];
      marked += m;
      made += n;
    };
    if (contactIds !== 'all') {
      for (let i = 0; i < contactIds.length; i += RESYNC_PAGE) await mark(contactIds.slice(i, i + RESYNC_PAGE));
      return marked;
    }
    // Every contact hash of the tenant (tenant names have no glob characters; the prefix is escaped). SCAN may return
    // a key twice (while Redis rehashes): marking it again changes nothing, it is only counted twice.
    const match = `${globEscape(this.key('c', tenant))}:*`;
    const head = this.key('c', tenant).length + 1;
    let cursor = '0';
    do {
      const [next, keys] = await this.redis.scan(cursor, 'MATCH', match, 'COUNT', RESYNC_PAGE);
      cursor = next;
      await mark(keys.map((k) => k.slice(head)));
    } while (cursor !== '0');
    return marked;
  }

  /** SCAN over the tenant's contact hashes; the cursor is SCAN's. */
  async syncedLeads(tenant: string, page: { cursor?: string; limit: number }): Promise<SyncedLeadsPage> {
    const head = this.key('c', tenant).length + 1;
    const [next, keys] = await this.redis.scan(page.cursor ?? '0', 'MATCH', `${globEscape(this.key('c', tenant))}:*`, 'COUNT', page.limit);
    const pipeline = this.redis.pipeline();
    for (const k of keys) pipeline.hmget(k, ...SYNCED_FIELDS);
    const replies = keys.length === 0 ? [] : ((await pipeline.exec()) ?? []);
    const leads: SyncedLead[] = [];
    replies.forEach(([err, values], i) => {
      if (err) throw err;
      const lead = toSyncedLead(keys[i]!.slice(head), values as Array<string | null>);
      if (lead) leads.push(lead);
    });
    return next === '0' ? { leads, mayRepeat: true } : { leads, cursor: next, mayRepeat: true };
  }

  async syncedLead(tenant: string, contactId: string): Promise<SyncedLead | undefined> {
    return toSyncedLead(contactId, await this.redis.hmget(this.contactKey(tenant, contactId), ...SYNCED_FIELDS));
  }

  async holdJob(name: string, owner: string, until: number, now: number): Promise<boolean> {
    return (await this.run('crmSyncHoldJob', name, owner, until, now)) === 1;
  }

  async releaseJob(name: string, owner: string): Promise<void> {
    await this.run('crmSyncReleaseJob', name, owner);
  }

  /** A hash per key (`idlock:<tenant>:<key>`: owner, until) that Redis expires a minute after until: nothing to prune. */
  async holdIdentities(tenant: string, keys: readonly string[], owner: string, until: number, now: number): Promise<boolean> {
    if (keys.length === 0) return true;
    return (await this.run('crmSyncHoldIdentities', tenant, owner, until, now, ...keys)) === 1;
  }

  async releaseIdentities(tenant: string, keys: readonly string[], owner: string): Promise<void> {
    if (keys.length > 0) await this.run('crmSyncReleaseIdentities', tenant, owner, ...keys);
  }

  /** O(1): the counts hash the scripts keep. A contact whose runner died counts as in flight until its lease is taken over. */
  async counts(_now: number): Promise<StatusCounts> {
    const c = await this.redis.hgetall(this.key('counts'));
    const n = (name: string) => Number(c[name] ?? 0);
    return { pending: n('pending'), inFlight: n('in-flight'), retrying: n('retrying'), deadLetters: n('dead'), leads: n('leads') };
  }

  async contactStatus(tenant: string, contactId: string, now: number): Promise<ContactStatus | undefined> {
    const [[, rowReply], [, historyReply]] = (await this.redis.multi()
      .hgetall(this.contactKey(tenant, contactId))
      .lrange(this.key('h', tenant, contactId), 0, HISTORY_LENGTH - 1)
      .exec()) as Array<[Error | null, unknown]>;
    const row = rowReply as Row;
    if (row.status === undefined) return undefined;
    const failures = int(row.failures) ?? 0;
    const leaseLapsed = row.status === 'in-flight' && (int(row.lease_until) ?? 0) <= now;
    const state: ContactStatus['state'] = leaseLapsed ? (failures > 0 ? 'retrying' : 'pending')
      : row.status === 'dead' ? 'dead-letter' : row.status as ContactStatus['state'];
    const history = (historyReply as string[]).map((r) => JSON.parse(r) as AttemptRecord);
    const status: ContactStatus = { tenant, contactId, state, attempts: int(row.attempts) ?? 0, history };
    if (row.lead_id !== undefined) status.leadId = row.lead_id;
    if (row.due_at !== undefined && state !== 'in-flight') status.dueAt = iso(Number(row.due_at));
    if (row.payload_hash !== undefined) status.payloadHash = row.payload_hash;
    if (row.last_outcome !== undefined) status.lastOutcome = row.last_outcome as ContactStatus['lastOutcome'];
    if (row.resync_at !== undefined) status.resyncAt = iso(Number(row.resync_at));
    return status;
  }

  async pruneEvents(before: number): Promise<number> {
    const tenants = await this.redis.smembers(this.key('tenants'));
    let pruned = 0;
    for (const t of tenants) pruned += await this.redis.zremrangebyscore(this.key('seen', t), '-inf', `(${before}`);
    return pruned;
  }

  /** A SET: refused when Redis is out of memory (noeviction) or read-only (a replica), as accepts would be. */
  async probe(now: number): Promise<void> {
    await this.redis.set(this.key('probe'), String(now));
  }

  onConnectionChange(listener: (connected: boolean) => void): void {
    let connected = this.redis.status === 'ready';
    const tell = (now: boolean) => {
      if (now === connected) return;
      connected = now;
      listener(now);
    };
    this.redis.on('ready', () => tell(true));
    // Our own close is not a lost connection.
    this.redis.on('close', () => { if (!this.closing) tell(false); });
  }

  async close(): Promise<void> {
    this.closing = true;
    if (this.redis.status === 'end') return;
    // Without a connection there is nothing to flush, and QUIT would wait for one.
    if (this.redis.status !== 'ready') {
      this.redis.disconnect();
      return;
    }
    await this.redis.quit().catch(() => this.redis.disconnect());
  }

  private key(...parts: string[]): string {
    return this.prefix + parts.join(':');
  }

  private contactKey(tenant: string, contactId: string): string {
    return this.key('c', tenant, contactId);
  }

  /** Runs one of ./scripts.ts (EVALSHA, loaded on first use and again after a Redis restart). */
  private run(name: StoreScriptName, ...args: ScriptArg[]): Promise<unknown> {
    const command = (this.redis as unknown as Record<StoreScriptName, (...a: ScriptArg[]) => Promise<unknown>>)[name];
    return command.call(this.redis, this.prefix, ...args);
  }
}

/** A literal for a SCAN MATCH pattern. */
function globEscape(s: string): string {
  return s.replace(/[*?[\]\\]/g, '\\$&');
}

const SYNCED_FIELDS = ['contact', 'status', 'lead_id', 'payload_hash', 'last_payload'] as const;

/** HMGET's answer for SYNCED_FIELDS, as Store.syncedLeads lists it. */
function toSyncedLead(contactId: string, [contact, status, leadId, payloadHash, lastPayload]: Array<string | null>): SyncedLead | undefined {
  if (status !== 'synced' || !contact || !leadId || !payloadHash) return undefined;
  return { contactId, contact: JSON.parse(contact) as Contact, leadId, payloadHash, payload: lastPayload ? JSON.parse(lastPayload) : undefined };
}

function toClaim(tenant: string, row: Row): Claim {
  const claim: Claim = {
    tenant, contactId: row.contact_id!, leaseToken: row.lease_token!, contact: JSON.parse(row.contact!) as Contact, failures: int(row.failures) ?? 0,
  };
  if (row.lead_id !== undefined) claim.leadId = row.lead_id;
  if (row.payload_hash !== undefined) claim.payloadHash = row.payload_hash;
  if (row.last_payload !== undefined) claim.lastPayload = JSON.parse(row.last_payload);
  if (row.create_intent_at !== undefined) claim.unconfirmedCreateAt = Number(row.create_intent_at);
  if (row.create_intent_identity !== undefined) claim.unconfirmedCreateIdentity = JSON.parse(row.create_intent_identity);
  if (row.unconfirmed_payload !== undefined) claim.unconfirmedPayload = JSON.parse(row.unconfirmed_payload);
  // A lease that lapsed without an outcome was syncing the snapshot it claimed: the one a change kept, or the contact.
  const lost = row.status === 'in-flight' ? row.claimed_contact ?? row.contact : row.claimed_contact;
  if (lost !== undefined) claim.lostWriteContact = JSON.parse(lost) as Contact;
  if (row.unconfirmed_write_at !== undefined) claim.unconfirmedWriteAt = Number(row.unconfirmed_write_at);
  if (row.resync_at !== undefined) claim.resyncAt = Number(row.resync_at);
  if (row.failing_since !== undefined) claim.failingSince = Number(row.failing_since);
  if (row.pending_since !== undefined) claim.pendingSince = Number(row.pending_since);
  return claim;
}
