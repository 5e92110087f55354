import type Database from 'better-sqlite3';

/** One contact the store may never have seen, as its first pending row. */
export interface NewContactRow {
  tenant: string;
  contactId: string;
  /** The contact's JSON. */
  contact: string;
  newestTs: number | null;
  /** When it is due (the end of its first quiet window), and since when it is pending. */
  dueAt: number;
  pendingSince: number;
}

/** Rows per multi-row INSERT, largest first; what is left of a batch is inserted row by row. */
const CHUNKS = [100, 10] as const;
const COLUMNS = 'tenant, contact_id, contact, newest_ts, version, status, due_at, pending_since, pending_due_at';
const ROW = "(?, ?, ?, ?, 1, 'pending', ?, ?, ?)";

type Params = Array<string | number | null>;

/**
 * Inserts contacts as new pending rows where none exists (ON CONFLICT DO NOTHING) and says which it inserted, for a
 * caller inside a transaction. A stream of new contacts is written a hundred rows per statement, without reading
 * first: a statement per row, or a read per row, costs as much as the insert. A chunk in which some contact exists
 * already (fewer rows changed than sent) is rolled back to its savepoint and inserted row by row, which tells each
 * row apart. No contact may appear twice in one call.
 */
export class NewContactInserter {
  private readonly many: Map<number, Database.Statement<[Params]>>;
  private readonly one: Database.Statement<[Params]>;
  private readonly savepoint: Database.Statement;
  private readonly rollback: Database.Statement;
  private readonly release: Database.Statement;

  constructor(db: Database.Database) {
    const insert = (n: number) => `INSERT INTO contacts (${COLUMNS}) VALUES ${Array(n).fill(ROW).join(', ')} ON CONFLICT (tenant, contact_id) DO NOTHING`;
    this.many = new Map(CHUNKS.map((n) => [n, db.prepare<[Params]>(insert(n))]));
    this.one = db.prepare<[Params]>(insert(1));
    this.savepoint = db.prepare('SAVEPOINT insert_new');
    this.rollback = db.prepare('ROLLBACK TO insert_new');
    this.release = db.prepare('RELEASE insert_new');
  }

  /** Returns, for each row in order, whether it was inserted (false: the contact exists). */
  insert(rows: readonly NewContactRow[]): boolean[] {
    const inserted = rows.map(() => false);
    let at = 0;
    for (const size of CHUNKS) {
      for (; at + size <= rows.length; at += size) {
        const params: Params = [];
        for (let i = at; i < at + size; i++) pushParams(params, rows[i]!);
        this.savepoint.run();
        if (this.many.get(size)!.run(params).changes === size) {
          this.release.run();
          inserted.fill(true, at, at + size);
          continue;
        }
        this.rollback.run();
        this.release.run();
        for (let i = at; i < at + size; i++) inserted[i] = this.insertOne(rows[i]!);
      }
    }
    for (; at < rows.length; at++) inserted[at] = this.insertOne(rows[at]!);
    return inserted;
  }

  private insertOne(row: NewContactRow): boolean {
    return this.one.run(pushParams([], row)).changes === 1;
  }
}

/** Appends one row's parameters, in ROW's order (no array per row: a batch has thousands). */
function pushParams(params: Params, r: NewContactRow): Params {
  params.push(r.tenant, r.contactId, r.contact, r.newestTs, r.dueAt, r.pendingSince, r.dueAt);
  return params;
}

/** A contact's identity as one string; the tenant's length first, so no two (tenant, id) pairs spell the same key. */
export function contactKey(tenant: string, contactId: string): string {
  return `${tenant.length}:${tenant}${contactId}`;
}
