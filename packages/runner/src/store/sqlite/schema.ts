import type Database from 'better-sqlite3';

/**
 * One row per (tenant, contact). `status` is one of pending | in-flight | retrying | dead | synced; `due_at` is the
 * scheduler's column (see ../types.ts) and the only one the dispatcher searches, through a partial index that holds
 * just the rows with something to do. `counters` keeps the /v1/status counts, updated in the same transactions, so
 * a status call never scans a million rows.
 */
const SCHEMA = `
CREATE TABLE IF NOT EXISTS contacts (
  tenant TEXT NOT NULL,
  contact_id TEXT NOT NULL,
  contact TEXT NOT NULL,
  newest_ts INTEGER,
  version INTEGER NOT NULL,
  status TEXT NOT NULL,
  due_at INTEGER,
  pending_since INTEGER,
  pending_due_at INTEGER,
  lease_token TEXT,
  lease_until INTEGER,
  lease_owner TEXT,
  claimed_version INTEGER,
  failures INTEGER NOT NULL DEFAULT 0,
  failing_since INTEGER,
  last_error TEXT,
  dead_at INTEGER,
  dead_cause TEXT,
  create_intent_at INTEGER,
  unconfirmed_write_at INTEGER,
  lead_id TEXT,
  payload_hash TEXT,
  last_payload TEXT,
  last_outcome TEXT,
  attempts INTEGER NOT NULL DEFAULT 0,
  PRIMARY KEY (tenant, contact_id)
);
CREATE INDEX IF NOT EXISTS contacts_due ON contacts (tenant, due_at) WHERE due_at IS NOT NULL;
CREATE INDEX IF NOT EXISTS contacts_dead ON contacts (tenant, dead_at) WHERE status = 'dead';
CREATE TABLE IF NOT EXISTS attempts (
  tenant TEXT NOT NULL,
  contact_id TEXT NOT NULL,
  n INTEGER NOT NULL,
  record TEXT NOT NULL,
  PRIMARY KEY (tenant, contact_id, n)
) WITHOUT ROWID;
CREATE TABLE IF NOT EXISTS seen_events (
  tenant TEXT NOT NULL,
  event_id TEXT NOT NULL,
  accepted_at INTEGER NOT NULL,
  PRIMARY KEY (tenant, event_id)
) WITHOUT ROWID;
CREATE INDEX IF NOT EXISTS seen_events_age ON seen_events (accepted_at);
CREATE TABLE IF NOT EXISTS counters (
  name TEXT PRIMARY KEY,
  n INTEGER NOT NULL
) WITHOUT ROWID;
CREATE TABLE IF NOT EXISTS jobs (
  name TEXT PRIMARY KEY,
  owner TEXT NOT NULL,
  until INTEGER NOT NULL
) WITHOUT ROWID;
CREATE TABLE IF NOT EXISTS identity_locks (
  tenant TEXT NOT NULL,
  key TEXT NOT NULL,
  owner TEXT NOT NULL,
  until INTEGER NOT NULL,
  PRIMARY KEY (tenant, key)
) WITHOUT ROWID;
CREATE TABLE IF NOT EXISTS probes (
  name TEXT PRIMARY KEY,
  at INTEGER NOT NULL
) WITHOUT ROWID;
`;

/** Columns added since the first release: a file made before them gets them on open (NULL in existing rows). */
const ADDED_COLUMNS = [
  { name: 'lease_owner', type: 'TEXT' }, { name: 'unconfirmed_write_at', type: 'INTEGER' }, { name: 'resync_at', type: 'INTEGER' },
  { name: 'create_intent_identity', type: 'TEXT' }, { name: 'unconfirmed_payload', type: 'TEXT' }, { name: 'claimed_contact', type: 'TEXT' },
] as const;

/** Indexes on added columns, created once the columns exist. Leases by owner: only the rows in flight. */
const LATER_INDEXES = `
CREATE INDEX IF NOT EXISTS contacts_lease_owner ON contacts (tenant, lease_owner) WHERE lease_owner IS NOT NULL;
`;

export const COUNTER_NAMES = ['pending', 'in-flight', 'retrying', 'dead', 'synced', 'leads'] as const;
export type CounterName = (typeof COUNTER_NAMES)[number];

/**
 * WAL with synchronous=FULL: a commit fsyncs the WAL, so "accepted" means on disk even after a power cut
 * (NORMAL would only survive a process crash). Group commit keeps that affordable. Leases and attempt outcomes,
 * which a power cut may cost only a repeated attempt, are committed with NORMAL (SqliteStore.withoutFsync).
 */
export function openSchema(db: Database.Database): void {
  db.pragma('journal_mode = WAL');
  db.pragma('synchronous = FULL');
  db.pragma('busy_timeout = 5000');
  db.pragma('cache_size = -32000');
  db.exec(SCHEMA);
  // Immediate: two processes opening an older file at once must not both add a column.
  db.transaction(() => {
    const have = new Set((db.prepare("SELECT name FROM pragma_table_info('contacts')").all() as Array<{ name: string }>).map((c) => c.name));
    for (const { name, type } of ADDED_COLUMNS) if (!have.has(name)) db.exec(`ALTER TABLE contacts ADD COLUMN ${name} ${type}`);
    db.exec(LATER_INDEXES);
  }).immediate();
  const seed = db.prepare('INSERT OR IGNORE INTO counters (name, n) VALUES (?, 0)');
  for (const name of COUNTER_NAMES) seed.run(name);
}
