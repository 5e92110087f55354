/**
 * A Runner wired as the daemon wires it — real engine, the seed-contract mapping pointed at a reference CRM over
 * HTTP, a SQLite file in a temp dir — with short windows so each test reads like a timeline.
 */
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { compileMapping, GotHttpClient, SyncEngine, type CompiledMapping } from '@crm-sync/core';
import { registerBuiltinAdapters, Runner, SqliteStore, type RunnerHooks, type RunnerOptions, type TenantSettings } from '@crm-sync/runner';
import { startReferenceCrm, type ReferenceCrm, type ReferenceCrmOptions } from '@crm-sync/testkit';
import { SEED_MAPPING, seedMappingText } from './seed-mapping';

export const CRM_KEY = 'runner-e2e-key';
process.env.SEED_CRM_AUTH_KEY = CRM_KEY;

/** The seed-contract mapping, compiled; with another request timeout when `timeoutMs` is given (seedMappingText). */
export function seedContract(timeoutMs?: number): CompiledMapping {
  registerBuiltinAdapters();
  return compileMapping(seedMappingText(timeoutMs), { file: SEED_MAPPING });
}

export interface HarnessOptions {
  crm?: ReferenceCrmOptions;
  tenant?: Partial<TenantSettings>;
  runner?: Partial<Omit<RunnerOptions, 'tenants' | 'store' | 'engine'>>;
}

/** Every hook call, in order, for assertions. */
export class HookLog {
  readonly events: Array<{ hook: keyof RunnerHooks; e: any }> = [];
  readonly hooks: RunnerHooks = Object.fromEntries(
    (['onAccepted', 'onRejected', 'onSync', 'onRetry', 'onDeadLetter', 'onRateLimited', 'onDeferred', 'onError'] as const)
      .map((hook) => [hook, (e: unknown) => { this.events.push({ hook, e }); }]),
  );
  of(hook: keyof RunnerHooks): any[] {
    return this.events.filter((x) => x.hook === hook).map((x) => x.e);
  }
}

export class RunnerHarness {
  runner!: Runner;
  store!: SqliteStore;
  readonly hookLog = new HookLog();
  readonly engine = new SyncEngine({ http: new GotHttpClient({ allowHosts: ['127.0.0.1'] }) });
  readonly file: string;
  private readonly dir: string;

  private constructor(readonly crm: ReferenceCrm, private readonly opts: HarnessOptions) {
    this.dir = mkdtempSync(join(tmpdir(), 'crm-sync-runner-'));
    this.file = join(this.dir, 'crm-sync.db');
  }

  static async start(opts: HarnessOptions = {}): Promise<RunnerHarness> {
    const crm = await startReferenceCrm({ auth: { style: 'auth-key', key: CRM_KEY }, ...opts.crm });
    const h = new RunnerHarness(crm, opts);
    h.open();
    return h;
  }

  tenant(over: Partial<TenantSettings> = {}): TenantSettings {
    return { name: 'acme', mapping: seedContract(), baseUrl: this.crm.url, quietMs: 100, maxWaitMs: 2000, concurrency: 4, ...this.opts.tenant, ...over };
  }

  /** Opens a (new) store on the harness's file and a Runner over it; does not start it. */
  open(runner: HarnessOptions['runner'] = {}): Runner {
    this.store = new SqliteStore(this.file);
    this.runner = new Runner({
      tenants: [this.tenant()], store: this.store, engine: this.engine, hooks: this.hookLog.hooks,
      retry: { baseMs: 50, maxMs: 200, budgetMs: 5000 }, ...this.opts.runner, ...runner,
    });
    return this.runner;
  }

  /** The CRM routes called so far, in order. */
  routes(): string[] {
    return this.crm.requests().map((r) => r.route);
  }

  async close(): Promise<void> {
    await this.runner.stop({ drainMs: 1000 }).catch(() => undefined);
    await this.store.close();
    await this.crm.close();
    rmSync(this.dir, { recursive: true, force: true });
  }
}

let seq = 0;
/** A contact event as the platform sends it. */
export function event(contactId: string, over: Record<string, unknown> = {}): Record<string, unknown> {
  return { eventId: `e${++seq}`, contactId, phone: '+91 98765 43210', name: 'Priya Sharma', email: `${contactId}@example.com`, attributes: { city: 'Mumbai' }, ...over };
}

export const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

/** Polls (real time) until the condition holds; fails the test with `what` after timeoutMs. */
export async function waitFor(what: string, cond: () => boolean | Promise<boolean>, timeoutMs = 5000): Promise<void> {
  const until = Date.now() + timeoutMs;
  while (!(await cond())) {
    if (Date.now() > until) throw new Error(`timed out waiting for ${what}`);
    await sleep(10);
  }
}
