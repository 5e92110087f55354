/**
 * The Redis store's state changes, one Lua script each, so every change (snapshot + schedule + counters) is atomic
 * on the server and applied in the order the server receives them. They mirror the SQLite store's transactions
 * (../sqlite/sqlite-store.ts) field for field; the shared store suite holds both to the same behaviour.
 *
 * Data model under a key prefix P (RedisStoreOptions.prefix, default `crm-sync:`):
 *   P c:<tenant>:<contactId>   hash: the contact's row (the SQLite columns, same names; absent field = NULL)
 *   P h:<tenant>:<contactId>   list: attempt records, newest first, trimmed to HISTORY_LENGTH
 *   P due:<tenant>             zset: contactId → due_at (pending, retrying, and in-flight at its lease's expiry)
 *   P dead:<tenant>            zset: contactId → dead_at
 *   P leases:<tenant>          hash: contactId → lease_owner, for every contact under a lease (lapsed or not)
 *   P seen:<tenant>            zset: eventId → accepted_at (redelivery de-dup; pruned by age)
 *   P tenants                  set of tenant names (for pruning and listing every tenant's dead letters)
 *   P counts                   hash: pending, in-flight, retrying, dead, synced, leads (the /v1/status counts)
 *   P job:<name>               hash: owner, until (Store.holdJob: a job one runner at a time runs)
 *
 * Keys are built inside the scripts from the prefix, as BullMQ's scripts do: fine on a single Redis (with replicas),
 * not on Redis Cluster. Times are integers (ms) passed by the caller; Lua formats them with %d, never as floats.
 */
import { HISTORY_LENGTH } from '../types';

const LIBRARY = `
local P = ARGV[1]
local function str(n) return string.format('%d', n) end
local function num(v) if v == nil or v == false then return nil end return tonumber(v) end
local function ckey(t, id) return P .. 'c:' .. t .. ':' .. id end
local function load(key)
  local flat = redis.call('HGETALL', key)
  if #flat == 0 then return nil end
  local row = {}
  for i = 1, #flat, 2 do row[flat[i]] = flat[i + 1] end
  return row
end
-- Writes the given fields; a field set to false is deleted (NULL).
local function write(key, fields)
  local set, del = {}, {}
  for f, v in pairs(fields) do
    if v == false then del[#del + 1] = f
    else
      set[#set + 1] = f
      if type(v) == 'number' then set[#set + 1] = str(v) else set[#set + 1] = v end
    end
  end
  if #set > 0 then redis.call('HSET', key, unpack(set)) end
  if #del > 0 then redis.call('HDEL', key, unpack(del)) end
end
local function move(from, to)
  if from == to then return end
  if from then redis.call('HINCRBY', P .. 'counts', from, -1) end
  if to then redis.call('HINCRBY', P .. 'counts', to, 1) end
end
local function leases(t) return P .. 'leases:' .. t end
local function index(t, id, due, deadAt)
  if due then redis.call('ZADD', P .. 'due:' .. t, str(due), id) else redis.call('ZREM', P .. 'due:' .. t, id) end
  if deadAt then redis.call('ZADD', P .. 'dead:' .. t, str(deadAt), id) else redis.call('ZREM', P .. 'dead:' .. t, id) end
end
-- Ends a lease (if any) with the row's next status and schedule. Fields not given keep their value.
local function settle(t, id, row, nxt)
  nxt.lease_token = false
  nxt.lease_until = false
  nxt.lease_owner = false
  nxt.claimed_version = false
  write(ckey(t, id), nxt)
  redis.call('HDEL', leases(t), id)
  local deadAt = nxt.dead_at
  if deadAt == nil then deadAt = num(row.dead_at) or false end
  index(t, id, nxt.due_at, deadAt)
  move(row.status, nxt.status)
end
-- Sets the unconfirmed-write mark (../types.ts) to at, never back.
local function markUnconfirmed(key, row, at)
  local mark = math.max(at, num(row.unconfirmed_write_at) or at)
  redis.call('HSET', key, 'unconfirmed_write_at', str(mark))
  row.unconfirmed_write_at = str(mark)
end
-- A lease ends without an outcome: the snapshot it claimed is kept for the next claim (unless a change kept it already).
local function keepClaimed(key, row)
  if not row.claimed_contact then redis.call('HSET', key, 'claimed_contact', row.contact) end
end
-- A lease ended without an outcome (handed back, its owner dead): a write it sent may still land (the mark), and the
-- snapshot it claimed is kept for the next claim.
local function leaseEnded(key, row, at)
  markUnconfirmed(key, row, at)
  keepClaimed(key, row)
end
local function recordAttempt(t, id, attempt, outcome)
  local key = ckey(t, id)
  redis.call('HINCRBY', key, 'attempts', 1)
  redis.call('HSET', key, 'last_outcome', outcome)
  local h = P .. 'h:' .. t .. ':' .. id
  redis.call('LPUSH', h, attempt)
  redis.call('LTRIM', h, 0, ${HISTORY_LENGTH - 1})
end
`;

/**
 * ARGV: P, now, then per item: tenant, contactId, eventId ('' none), ts ms ('' none), contact JSON, quietMs, maxWaitMs.
 * Returns one outcome per item. The due time is debounceDueAt (../../debounce/window.ts): min(last + quiet, first + maxWait).
 */
const ACCEPT = `${LIBRARY}
local now = tonumber(ARGV[2])
local function acceptOne(t, id, eventId, ts, contact, quiet, maxWait)
  if eventId ~= '' and redis.call('ZADD', P .. 'seen:' .. t, 'NX', str(now), eventId) == 0 then return 'duplicate' end
  local key = ckey(t, id)
  local row = load(key)
  local newest = row and num(row.newest_ts)
  if ts and newest and ts < newest then return 'stale' end
  local since = (row and num(row.pending_since)) or now
  local pendingDue = math.min(now + quiet, since + maxWait)
  local newestTs = newest
  if ts and (not newest or ts > newest) then newestTs = ts end
  local fields = { contact = contact, newest_ts = newestTs or false, pending_since = since, pending_due_at = pendingDue }
  if not row then
    fields.version = 1
    fields.status = 'pending'
    fields.due_at = pendingDue
    fields.failures = 0
    fields.attempts = 0
    write(key, fields)
    index(t, id, pendingDue, false)
    move(nil, 'pending')
    redis.call('SADD', P .. 'tenants', t)
    return 'accepted'
  end
  fields.version = num(row.version) + 1
  -- A change to a contact in flight keeps the snapshot its lease claimed: its write carries that (claimed_contact).
  if row.status == 'in-flight' and not row.claimed_contact then fields.claimed_contact = row.contact end
  local failures = num(row.failures) or 0
  local leased = row.status == 'in-flight' and (num(row.lease_until) or 0) > now
  local failing = row.status == 'retrying' or (row.status == 'in-flight' and failures > 0)
  -- In flight: the claim's outcome decides when it is due again (complete/fail read pending_due_at). A lapsed lease
  -- (its runner died) is taken back, marked as an unconfirmed write: the contact waits for its window like any other.
  -- Retrying: the backoff still holds. Dead or synced: a new change starts over.
  if leased then
    write(key, fields)
    return 'accepted'
  end
  if row.status == 'in-flight' then markUnconfirmed(key, row, now) end
  fields.lease_token = false
  fields.lease_until = false
  fields.lease_owner = false
  redis.call('HDEL', leases(t), id)
  if failing then
    fields.status = 'retrying'
    fields.due_at = math.max(num(row.due_at) or 0, pendingDue)
  else
    fields.status = 'pending'
    fields.due_at = pendingDue
    fields.failures = 0
    fields.failing_since = false
    fields.dead_at = false
    fields.dead_cause = false
  end
  write(key, fields)
  index(t, id, fields.due_at, false)
  move(row.status, fields.status)
  return 'accepted'
end
local out = {}
for i = 3, #ARGV, 7 do
  out[#out + 1] = acceptOne(ARGV[i], ARGV[i + 1], ARGV[i + 2], tonumber(ARGV[i + 3]), ARGV[i + 4], tonumber(ARGV[i + 5]), tonumber(ARGV[i + 6]))
end
return out
`;

/**
 * ARGV: P, tenant, now, limit, leaseMs, token base, owner, createTimeoutMs ('' none). Returns each claimed row (as it was)
 * as JSON, with its lease token. A lapsed lease with a create not yet timed out is due then instead (ClaimOptions).
 */
const CLAIM = `${LIBRARY}
local t, now, limit, leaseMs, base, owner = ARGV[2], tonumber(ARGV[3]), tonumber(ARGV[4]), tonumber(ARGV[5]), ARGV[6], ARGV[7]
local createTimeoutMs = tonumber(ARGV[8])
local ids = redis.call('ZRANGEBYSCORE', P .. 'due:' .. t, '-inf', str(now), 'LIMIT', 0, limit)
local out = {}
for i, id in ipairs(ids) do
  local key = ckey(t, id)
  local row = load(key)
  -- Still in flight: its lease lapsed without an outcome, so its runner may have sent a write nobody recorded.
  if row.status == 'in-flight' then markUnconfirmed(key, row, now) end
  -- A create sent for it may not have landed yet: not before it has timed out (ClaimOptions.createTimeoutMs).
  -- createSettledAt (../types.ts): only while the create's outcome is unknown (an unconfirmed write at or after it).
  local settledAt = nil
  local intent, mark = num(row.create_intent_at), num(row.unconfirmed_write_at)
  if intent and mark and mark >= intent and createTimeoutMs and intent + createTimeoutMs > now then settledAt = intent + createTimeoutMs end
  if settledAt and row.status == 'in-flight' then
    local status = 'pending'
    if (num(row.failures) or 0) > 0 then status = 'retrying' end
    settle(t, id, row, { status = status, due_at = settledAt })
    keepClaimed(key, row)
  elseif settledAt then
    write(key, { due_at = settledAt })
    redis.call('ZADD', P .. 'due:' .. t, str(settledAt), id)
  else
    local token = base .. ':' .. i
    local leaseUntil = now + leaseMs
    write(key, { status = 'in-flight', lease_token = token, lease_until = leaseUntil, due_at = leaseUntil, lease_owner = owner,
      claimed_version = row.version, pending_since = false, pending_due_at = false })
    redis.call('ZADD', P .. 'due:' .. t, str(leaseUntil), id)
    redis.call('HSET', leases(t), id, owner)
    move(row.status, 'in-flight')
    row.contact_id = id
    row.lease_token = token
    out[#out + 1] = cjson.encode(row)
  end
end
return out
`;

/**
 * ARGV: P, tenant, contactId, lease token, now, outcome, leadId ('' none), payload hash, payload JSON, attempt JSON,
 * attempt outcome, recheckAt ('' none), the claim's unconfirmedWriteAt ('' none), the claim's resyncAt ('' none),
 * '1' when the sync forgot the stored lead id (a skip after the CRM no longer had it).
 * A skip wrote nothing: the lead, payload hash and payload stay what the CRM was last told, or go with a forgotten lead.
 */
const COMPLETE = `${LIBRARY}
local t, id, token, now = ARGV[2], ARGV[3], ARGV[4], tonumber(ARGV[5])
local key = ckey(t, id)
local row = load(key)
if not row then return 0 end
local skipped = ARGV[6] == 'skipped'
local leadId = row.lead_id
if skipped then
  if ARGV[15] == '1' then leadId = nil end
elseif ARGV[7] ~= '' then leadId = ARGV[7] end
if leadId and not row.lead_id then redis.call('HINCRBY', P .. 'counts', 'leads', 1) end
if row.lead_id and not leadId then redis.call('HINCRBY', P .. 'counts', 'leads', -1) end
local hash, payload = ARGV[8], ARGV[9]
if skipped then
  hash, payload = false, false
  if leadId then hash, payload = row.payload_hash or false, row.last_payload or false end
end
if row.lease_token == token then
  write(key, { lead_id = leadId or false, payload_hash = hash, last_payload = payload, last_outcome = ARGV[6], create_intent_at = false,
    create_intent_identity = false, claimed_contact = false })
  -- A resync asked for after this attempt was claimed still needs a sync of its own.
  if row.resync_at and row.resync_at == ARGV[14] then redis.call('HDEL', key, 'resync_at') end
  -- unconfirmedRecheckAt (../types.ts)
  local mark, recheckAt = num(row.unconfirmed_write_at), nil
  if mark then
    if mark ~= num(ARGV[13]) then recheckAt = now
    elseif ARGV[12] ~= '' then recheckAt = math.max(now, tonumber(ARGV[12])) end
    if not recheckAt then redis.call('HDEL', key, 'unconfirmed_write_at') end
  end
  -- What unconfirmed writes may have set is known to be overwritten once nothing is unconfirmed any more.
  if not recheckAt then redis.call('HDEL', key, 'unconfirmed_payload') end
  local clean = { failures = 0, failing_since = false, last_error = false, dead_at = false, dead_cause = false }
  if row.version ~= row.claimed_version then
    clean.status, clean.due_at = 'pending', math.max(now, num(row.pending_due_at) or now)
  elseif recheckAt then
    clean.status, clean.due_at = 'pending', recheckAt
  else
    clean.status, clean.due_at = 'synced', false
  end
  settle(t, id, row, clean)
else
  -- The lease lapsed and someone else holds the contact now: keep only what prevents a duplicate lead, and mark a
  -- write this attempt made, which may have landed after the new holder's.
  if leadId ~= row.lead_id then
    if leadId then redis.call('HSET', key, 'lead_id', leadId) else redis.call('HDEL', key, 'lead_id') end
  end
  if ARGV[6] ~= 'unchanged' and not skipped then markUnconfirmed(key, row, now) end
end
recordAttempt(t, id, ARGV[10], ARGV[11])
return 1
`;

/**
 * ARGV: P, tenant, contactId, lease token, now, retryAt ('' = dead letter), dead cause, error JSON, attempt JSON, attempt
 * outcome, '1' when a write's outcome is unknown, the unconfirmed payload JSON ('' unchanged).
 */
const FAIL = `${LIBRARY}
local t, id, token, now, retryAt = ARGV[2], ARGV[3], ARGV[4], tonumber(ARGV[5]), tonumber(ARGV[6])
local row = load(ckey(t, id))
if not row then return 0 end
if ARGV[11] == '1' then markUnconfirmed(ckey(t, id), row, now) end
if row.lease_token == token then
  -- Its outcome is recorded: a change meanwhile kept no lost write. What its write may have set is kept as a payload.
  if ARGV[11] == '1' and ARGV[12] ~= '' then redis.call('HSET', ckey(t, id), 'unconfirmed_payload', ARGV[12]) end
  redis.call('HDEL', ckey(t, id), 'claimed_contact')
  local failures = (num(row.failures) or 0) + 1
  local since = num(row.failing_since) or now
  if retryAt then
    settle(t, id, row, { status = 'retrying', due_at = retryAt, failures = failures, failing_since = since, last_error = ARGV[8],
      dead_at = false, dead_cause = false })
  elseif row.version ~= row.claimed_version then
    -- The contact changed while this attempt failed: the contract says a new change tries again.
    settle(t, id, row, { status = 'pending', due_at = math.max(now, num(row.pending_due_at) or now), failures = 0,
      failing_since = false, last_error = ARGV[8], dead_at = false, dead_cause = false })
  else
    settle(t, id, row, { status = 'dead', due_at = false, failures = failures, failing_since = since, last_error = ARGV[8],
      dead_at = now, dead_cause = ARGV[7] })
  end
end
recordAttempt(t, id, ARGV[9], ARGV[10])
return 1
`;

/**
 * ARGV: P, tenant, contactId, lease token, now, createTimeoutMs ('' none), deferUntil ('' none: a hand-back, marked),
 * the claim's pendingSince ('' none: restored on a deferral, so a change meanwhile does not restart the maximum wait).
 */
const RELEASE = `${LIBRARY}
local t, id, token, now = ARGV[2], ARGV[3], ARGV[4], tonumber(ARGV[5])
local createTimeoutMs, deferUntil = tonumber(ARGV[6]), tonumber(ARGV[7])
local row = load(ckey(t, id))
if not row or row.lease_token ~= token then return 0 end
-- Its attempt may still have a write on its way (unless it was deferred before sending anything); a create, not
-- settled before it has timed out (createSettledAt in ../types.ts).
if deferUntil then redis.call('HDEL', ckey(t, id), 'claimed_contact')
else
  leaseEnded(ckey(t, id), row, now)
end
local due = math.max(now, deferUntil or now)
local intent, mark = num(row.create_intent_at), num(row.unconfirmed_write_at)
if intent and createTimeoutMs and mark and mark >= intent then due = math.max(due, intent + createTimeoutMs) end
local status = 'pending'
if (num(row.failures) or 0) > 0 then status = 'retrying' end
settle(t, id, row, { status = status, due_at = due })
local claimedSince = tonumber(ARGV[8])
if deferUntil and claimedSince then
  write(ckey(t, id), { pending_since = math.min(num(row.pending_since) or claimedSince, claimedSince), pending_due_at = due })
end
return 1
`;

/**
 * ARGV: P, tenant, contactId, lease token, payload JSON, the claim's contact JSON. Store.recordUnconfirmedPayload: 1
 * while the lease is held. The lost snapshot is recorded; a change since the claim kept that one, so the claim's own
 * (what it will send) is kept now in its place.
 */
const RECORD_UNCONFIRMED = `
local key = ARGV[1] .. 'c:' .. ARGV[2] .. ':' .. ARGV[3]
local cur = redis.call('HMGET', key, 'lease_token', 'version', 'claimed_version')
if cur[1] ~= ARGV[4] then return 0 end
redis.call('HSET', key, 'unconfirmed_payload', ARGV[5])
if cur[2] ~= cur[3] then redis.call('HSET', key, 'claimed_contact', ARGV[6]) else redis.call('HDEL', key, 'claimed_contact') end
return 1
`;

/** ARGV: P, tenant, contactId, lease token, now, leaseMs. Returns 1 if the lease was still held (and is extended), else 0. */
const RENEW = `${LIBRARY}
local t, id, token, now, leaseMs = ARGV[2], ARGV[3], ARGV[4], tonumber(ARGV[5]), tonumber(ARGV[6])
local key = ckey(t, id)
if redis.call('HGET', key, 'lease_token') ~= token then return 0 end
local leaseUntil = now + leaseMs
write(key, { lease_until = leaseUntil, due_at = leaseUntil })
redis.call('ZADD', P .. 'due:' .. t, str(leaseUntil), id)
return 1
`;

/**
 * ARGV: P, tenant, now, createTimeoutMs, owner... Ends every lease of those owners on the tenant's contacts; a contact
 * with an unconfirmed create is due once that create has timed out (as RELEASE makes it). Returns how many.
 */
const RELEASE_OWNERS = `${LIBRARY}
local t, now, createTimeoutMs = ARGV[2], tonumber(ARGV[3]), tonumber(ARGV[4])
local dead = {}
for i = 5, #ARGV do dead[ARGV[i]] = true end
local flat = redis.call('HGETALL', leases(t))
local n = 0
for i = 1, #flat, 2 do
  local id, owner = flat[i], flat[i + 1]
  if dead[owner] then
    local row = load(ckey(t, id))
    if row and row.lease_owner == owner then
      -- The dead owner may have sent a write before it died that the CRM has yet to apply; a create, not settled
      -- before it has timed out (marked now, after its intent: createSettledAt in ../types.ts).
      leaseEnded(ckey(t, id), row, now)
      local due = now
      local intent = num(row.create_intent_at)
      if intent then due = math.max(now, intent + createTimeoutMs) end
      local status = 'pending'
      if (num(row.failures) or 0) > 0 then status = 'retrying' end
      settle(t, id, row, { status = status, due_at = due })
      n = n + 1
    end
  end
end
return n
`;

/** ARGV: P, tenant, contactId ('' = every dead letter of the tenant), now. Returns how many. */
const REPLAY = `${LIBRARY}
local t, id, now = ARGV[2], ARGV[3], tonumber(ARGV[4])
local ids = {}
if id == '' then ids = redis.call('ZRANGE', P .. 'dead:' .. t, 0, -1) else ids = { id } end
local n = 0
for _, cid in ipairs(ids) do
  local row = load(ckey(t, cid))
  if row and row.status == 'dead' then
    settle(t, cid, row, { status = 'pending', due_at = now, failures = 0, failing_since = false, dead_at = false, dead_cause = false })
    n = n + 1
  end
end
return n
`;

/**
 * ARGV: P, tenant, now, intervalMs, how many were made pending before this call, contactId... Store.resync for these
 * contacts (../types.ts), as SqliteStore.resync does. Returns { marked, made pending }.
 */
const RESYNC = `${LIBRARY}
local t, now, interval, made = ARGV[2], tonumber(ARGV[3]), tonumber(ARGV[4]), tonumber(ARGV[5])
local marked, madeHere = 0, 0
for i = 6, #ARGV do
  local id = ARGV[i]
  local key = ckey(t, id)
  local row = load(key)
  if row and row.status ~= 'dead' then
    if row.status == 'synced' then
      local due = now + math.floor((made + madeHere) * interval)
      madeHere = madeHere + 1
      write(key, { status = 'pending', due_at = due, pending_since = now, pending_due_at = due, resync_at = now })
      index(t, id, due, false)
      move('synced', 'pending')
    elseif row.status == 'in-flight' then
      local due = now + math.floor((made + madeHere) * interval)
      madeHere = madeHere + 1
      write(key, { resync_at = now, version = num(row.version) + 1, pending_since = num(row.pending_since) or now,
        pending_due_at = num(row.pending_due_at) or due })
    else
      write(key, { resync_at = now })
    end
    marked = marked + 1
  end
end
return { marked, madeHere }
`;

/**
 * ARGV: P, tenant, contactId, now, lease token, identity JSON ('' none), unconfirmed payload JSON ('' unchanged). Only
 * while that lease is held (Store.markCreateIntent).
 */
const CREATE_INTENT = `
local key = ARGV[1] .. 'c:' .. ARGV[2] .. ':' .. ARGV[3]
if redis.call('HGET', key, 'lease_token') ~= ARGV[5] then return 0 end
redis.call('HSET', key, 'create_intent_at', ARGV[4])
if ARGV[6] ~= '' then redis.call('HSET', key, 'create_intent_identity', ARGV[6]) else redis.call('HDEL', key, 'create_intent_identity') end
if ARGV[7] ~= '' then redis.call('HSET', key, 'unconfirmed_payload', ARGV[7]) end
return 1
`;

/** ARGV: P, name, owner, until, now. Store.holdJob: 1 when taken or extended. */
const HOLD_JOB = `
local key = ARGV[1] .. 'job:' .. ARGV[2]
local cur = redis.call('HMGET', key, 'owner', 'until')
if cur[1] and cur[1] ~= ARGV[3] and tonumber(cur[2]) > tonumber(ARGV[5]) then return 0 end
redis.call('HSET', key, 'owner', ARGV[3], 'until', ARGV[4])
return 1
`;

/**
 * ARGV: P, tenant, owner, until, now, key... Store.holdIdentities: all the keys or none. Each is a hash (owner, until),
 * compared with the runner's clock as job leases are; Redis expires it a minute after until, so none is left behind.
 */
const HOLD_IDENTITIES = `
local base = ARGV[1] .. 'idlock:' .. ARGV[2] .. ':'
local owner, untilAt, now = ARGV[3], tonumber(ARGV[4]), tonumber(ARGV[5])
for i = 6, #ARGV do
  local cur = redis.call('HMGET', base .. ARGV[i], 'owner', 'until')
  if cur[1] and cur[1] ~= owner and tonumber(cur[2]) > now then return 0 end
end
for i = 6, #ARGV do
  local key = base .. ARGV[i]
  redis.call('HSET', key, 'owner', owner, 'until', ARGV[4])
  redis.call('PEXPIRE', key, math.max(1, untilAt - now) + 60000)
end
return 1
`;

/** ARGV: P, tenant, owner, key... Store.releaseIdentities. */
const RELEASE_IDENTITIES = `
local base = ARGV[1] .. 'idlock:' .. ARGV[2] .. ':'
for i = 4, #ARGV do
  if redis.call('HGET', base .. ARGV[i], 'owner') == ARGV[3] then redis.call('DEL', base .. ARGV[i]) end
end
return 0
`;

/** ARGV: P, name, owner. Store.releaseJob. */
const RELEASE_JOB = `
local key = ARGV[1] .. 'job:' .. ARGV[2]
if redis.call('HGET', key, 'owner') == ARGV[3] then redis.call('DEL', key) end
return 0
`;

export const STORE_SCRIPTS = {
  crmSyncAccept: ACCEPT,
  crmSyncClaim: CLAIM,
  crmSyncComplete: COMPLETE,
  crmSyncFail: FAIL,
  crmSyncRelease: RELEASE,
  crmSyncRenew: RENEW,
  crmSyncRecordUnconfirmed: RECORD_UNCONFIRMED,
  crmSyncReleaseOwners: RELEASE_OWNERS,
  crmSyncReplay: REPLAY,
  crmSyncResync: RESYNC,
  crmSyncCreateIntent: CREATE_INTENT,
  crmSyncHoldJob: HOLD_JOB,
  crmSyncReleaseJob: RELEASE_JOB,
  crmSyncHoldIdentities: HOLD_IDENTITIES,
  crmSyncReleaseIdentities: RELEASE_IDENTITIES,
} as const;

export type StoreScriptName = keyof typeof STORE_SCRIPTS;
