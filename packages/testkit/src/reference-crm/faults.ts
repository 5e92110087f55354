import type { IncomingMessage, ServerResponse } from 'node:http';
import { sendJson, type JsonReply, type TestServer } from '../http-server';
import { prng } from '../prng';
import { isPlainObject } from './body';
import type { Fault, LoggedRequest } from './types';

const ROUTES = new Set(['create', 'fetch', 'update', 'upsert', '*']);
const NUMBER_FIELDS = ['status', 'retryAfterSec', 'latencyMs', 'rate', 'times'] as const;
const FLAG_FIELDS = ['hang', 'reset', 'resetAfterCommit', 'failInBody'] as const;

/** Returns the reason a fault is malformed, or undefined. Admin requests arrive as untrusted JSON. */
export function faultError(f: unknown): string | undefined {
  if (!isPlainObject(f)) return 'a fault must be an object';
  if (!ROUTES.has(f.route as string)) return `fault.route must be one of ${[...ROUTES].join(', ')}`;
  for (const k of NUMBER_FIELDS) {
    if (f[k] !== undefined && (typeof f[k] !== 'number' || !Number.isFinite(f[k]) || (f[k] as number) < 0)) {
      return `fault.${k} must be a non-negative number`;
    }
  }
  for (const k of FLAG_FIELDS) {
    if (f[k] !== undefined && typeof f[k] !== 'boolean') return `fault.${k} must be a boolean`;
  }
  if (f.status !== undefined && ((f.status as number) < 100 || (f.status as number) > 599)) return 'fault.status must be 100..599';
  if (f.rate !== undefined && (f.rate as number) > 1) return 'fault.rate must be between 0 and 1';
  return undefined;
}

export class FaultList {
  private entries: Array<{ fault: Fault; left: number }> = [];
  private random: () => number;

  constructor(private readonly seed: number) {
    this.random = prng(seed);
  }

  add(f: Fault): void {
    const err = faultError(f);
    if (err) throw new TypeError(err);
    if (f.times !== undefined && f.times < 1) return;
    this.entries.push({ fault: { ...f }, left: f.times ?? Infinity });
  }

  list(): Fault[] {
    return this.entries.map((e) => ({ ...e.fault }));
  }

  clear(): void {
    this.entries = [];
  }

  reset(): void {
    this.entries = [];
    this.random = prng(this.seed);
  }

  /** The first matching fault that applies (by its rate); `times` counts only applications. */
  take(route: LoggedRequest['route']): Fault | undefined {
    for (let i = 0; i < this.entries.length; i++) {
      const entry = this.entries[i]!;
      if (entry.fault.route !== '*' && entry.fault.route !== route) continue;
      const rate = entry.fault.rate ?? 1;
      if (rate < 1 && this.random() >= rate) continue;
      if (--entry.left <= 0) this.entries.splice(i, 1);
      return entry.fault;
    }
    return undefined;
  }
}

/**
 * Plays the part of a fault that comes before the CRM's own answer: added latency, a hang, a reset, an injected
 * status (with Retry-After) or a failure inside a 200. Faults stand for the network and proxies in front of the CRM,
 * so this runs before auth. Resolves to true when the request has been answered or dropped; the caller stops there.
 * (`resetAfterCommit` is the caller's: it processes the request, then drops the answer.)
 */
export async function playFault(fault: Fault | undefined, ctx: {
  server: TestServer; req: IncomingMessage; res: ServerResponse; failure: (status: number) => JsonReply;
}): Promise<boolean> {
  if (fault?.latencyMs) await ctx.server.delay(fault.latencyMs);
  if (ctx.server.closed || fault?.hang) return true;
  if (fault?.reset) {
    ctx.req.socket.destroy();
    return true;
  }
  if (fault?.status) {
    const reply = ctx.failure(fault.status);
    if (fault.retryAfterSec !== undefined) reply.headers = { ...reply.headers, 'retry-after': String(fault.retryAfterSec) };
    sendJson(ctx.res, reply);
    return true;
  }
  if (fault?.failInBody) {
    sendJson(ctx.res, ctx.failure(200));
    return true;
  }
  return false;
}
