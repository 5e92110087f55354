import type { Logger } from '../log';
import type { Store } from '../store/types';

/**
 * Whether each store method writes: their outcomes say whether the store takes writes (reads work on a read-only
 * disk). A record over every method, so a method added to Store cannot be left out by mistake.
 */
const WRITES: Record<keyof Store, boolean> = {
  accept: true, claimDue: true, markCreateIntent: true, complete: true, fail: true, release: true, renewLease: true,
  releaseOwners: true, replay: true, resync: true, pruneEvents: true, probe: true, holdJob: true, releaseJob: true,
  nextDueAt: false, leaseOwners: false, deadLetters: false, counts: false, contactStatus: false, syncedLeads: false, syncedLead: false, close: false,
  onConnectionChange: false, holdIdentities: true, releaseIdentities: true, recordUnconfirmedPayload: true,
};

export interface StoreHealthReport {
  /** No write has failed, or writes have worked again for `holdMs` since the last one that did. */
  up: boolean;
  /** Since when writes fail (ISO 8601), and the last failure's code (e.g. SQLITE_FULL, SQLITE_READONLY): never its text. */
  failingSince?: string;
  error?: string;
  /** False while the connection to the store is lost (Redis): reads wait for it too, so callers should not. */
  reachable?: false;
}

export interface StoreHealthOptions {
  now(): number;
  logger: Logger;
  /** While writes fail, `check` probes the store at most this often. Default 1000. */
  probeEveryMs?: number;
  /** The store counts as up again only once a write works this long after the last one that failed. Default 5000. */
  holdMs?: number;
}

/**
 * Whether the store takes writes, from what its writes do: the first that fails marks it down (disk full, a
 * filesystem turned read-only, Redis out of memory or gone); it is up again once a write works `holdMs` after the last
 * failure. The hold matters on a full disk, where small writes (a lease, an outcome) may still fit while every
 * accept is refused: up then would say "send events here" to a store refusing them. While it is down, `check` (the
 * daemon's /readyz) makes a write of its own (Store.probe), so it comes back when nothing else writes, such as when a
 * load balancer stops sending events on the 503. Ingest is not refused for it: a batch tried meanwhile gets its own
 * answer.
 */
export class StoreHealth {
  /** The store to hand to the runner: the same store, its writes watched. */
  readonly store: Store;
  private down?: { since: number; lastFailure: number; error: string };
  /** Since when the connection to the store is lost (Store.onConnectionChange); undefined while it holds. */
  private disconnectedSince?: number;
  private lastProbe = Number.NEGATIVE_INFINITY;
  private probing?: Promise<void>;
  private readonly probeEveryMs: number;
  private readonly holdMs: number;

  constructor(target: Store, private readonly opts: StoreHealthOptions) {
    this.probeEveryMs = opts.probeEveryMs ?? 1000;
    this.holdMs = opts.holdMs ?? 5000;
    this.store = new Proxy(target, {
      get: (obj, prop, receiver) => {
        const value = Reflect.get(obj, prop, receiver) as unknown;
        if (typeof value !== 'function' || WRITES[prop as keyof Store] !== true) return value;
        return (...args: unknown[]) => this.watch((value as (...a: unknown[]) => Promise<unknown>).apply(obj, args));
      },
    });
    target.onConnectionChange?.((connected) => {
      const now = opts.now();
      if (!connected && this.disconnectedSince === undefined) {
        this.disconnectedSince = now;
        opts.logger.warn('store: the connection is lost; /readyz answers 503, and calls wait until it is back');
      } else if (connected && this.disconnectedSince !== undefined) {
        opts.logger.info({ downForMs: now - this.disconnectedSince }, 'store: connected again');
        this.disconnectedSince = undefined;
      }
    });
  }

  get up(): boolean {
    return this.down === undefined && this.disconnectedSince === undefined;
  }

  /** False while the connection to the store is lost: reads wait for it then (a full disk still reads). */
  get reachable(): boolean {
    return this.disconnectedSince === undefined;
  }

  /** The state now; while down, after a probe (at most one per probeEveryMs, shared by concurrent callers). */
  async check(): Promise<StoreHealthReport> {
    // No probe while the connection is lost: it would only wait for it.
    if (this.disconnectedSince !== undefined) {
      return { up: false, failingSince: new Date(this.disconnectedSince).toISOString(), error: 'DISCONNECTED', reachable: false };
    }
    if (this.down !== undefined && this.probing === undefined && this.opts.now() - this.lastProbe >= this.probeEveryMs) {
      this.lastProbe = this.opts.now();
      this.probing = this.store.probe(this.lastProbe).catch(() => undefined).finally(() => { this.probing = undefined; });
    }
    await this.probing;
    const d = this.down;
    return d === undefined ? { up: true } : { up: false, failingSince: new Date(d.since).toISOString(), error: d.error };
  }

  private async watch<T>(write: Promise<T>): Promise<T> {
    try {
      const result = await write;
      const d = this.down;
      if (d !== undefined && this.opts.now() - d.lastFailure >= this.holdMs) {
        this.opts.logger.info({ downForMs: this.opts.now() - d.since }, 'store: writes work again');
        this.down = undefined;
      }
      return result;
    } catch (err) {
      const error = errorCode(err);
      const now = this.opts.now();
      if (this.down === undefined) {
        this.down = { since: now, lastFailure: now, error };
        this.opts.logger.warn({ err: { code: error, message: (err as Error).message } }, 'store: a write failed; /readyz answers 503 until writes work again');
      } else {
        this.down.lastFailure = now;
        this.down.error = error;
      }
      throw err;
    }
  }
}

/** A short, fixed name for what failed (SQLite's result code, a Node errno, an error class): safe on an open probe. */
function errorCode(err: unknown): string {
  // A Redis error reply starts with its code: OOM, READONLY, MISCONF...
  const reply = (err as { name?: unknown }).name === 'ReplyError' ? /^([A-Z]{2,32})\b/.exec(String((err as Error).message)) : null;
  if (reply) return reply[1]!;
  const code = (err as { code?: unknown }).code;
  if (typeof code === 'string' && /^[A-Z][A-Z0-9_]{1,63}$/.test(code)) return code;
  const name = (err as { name?: unknown }).name;
  return typeof name === 'string' && /^[A-Za-z][A-Za-z0-9_]{0,63}$/.test(name) ? name : 'Error';
}
