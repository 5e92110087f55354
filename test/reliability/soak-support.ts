/**
 * What the reliability soaks share: the daemon as a restartable child process, the platform's at-least-once sender,
 * and the figures (CRM calls, leads against final states) printed at the end of each run.
 */
import { mkdirSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { DaemonClient, DaemonRequestError, type IngestResult } from '@crm-sync/runner';
import { checkLeads, sliceStream, type ContactState, type LeadCheck, type LoggedRequest, type PlannedEvent, type ReferenceCrm } from '@crm-sync/testkit';
import { CRM_KEY, spawnDaemon, TENANT, type ChildDaemon } from '../daemon.support';

/** `SOAK=long` (pnpm soak) runs the long mode; anything else the short CI mode. */
export const LONG = process.env.SOAK === 'long';

export const sleep = (ms: number) => new Promise<void>((r) => setTimeout(r, Math.max(0, ms)));

export interface SoakConfig {
  crmUrl: string;
  mappingFile: string;
  quiet: string;
  maxWait: string;
  /** After a kill -9, the dead process's contacts are claimed again once this lapses. */
  lease: string;
  retry: { base: string; max: string; budget: string };
  concurrency: number;
  /** Default `<dir>/data`. */
  dataDir?: string;
}

/** Writes `<dir>/crm-sync.yaml` for tenant `acme`, with its data in `<dir>/data` unless `c.dataDir` says where. */
export function writeSoakConfig(dir: string, c: SoakConfig): string {
  const file = join(dir, 'crm-sync.yaml');
  writeFileSync(file, [
    'listen: 127.0.0.1:0',
    `dataDir: ${JSON.stringify(c.dataDir ?? './data')}`,
    'allowHosts: [127.0.0.1]',
    'logLevel: info',
    `lease: ${c.lease}`,
    'drain: 2s',
    `retry: { base: ${c.retry.base}, max: ${c.retry.max}, budget: ${c.retry.budget} }`,
    'tenants:',
    `  ${TENANT}: { mapping: ${JSON.stringify(c.mappingFile)}, baseUrl: ${JSON.stringify(c.crmUrl)}, quiet: ${c.quiet}, maxWait: ${c.maxWait}, concurrency: ${c.concurrency} }`,
  ].join('\n'));
  return file;
}

/** `crm-sync run --config <file>` as a child process that can be killed with SIGKILL and started again on the same data. */
export class RestartableDaemon {
  kills = 0;
  private child?: ChildDaemon;

  constructor(private readonly configFile: string) {}

  /** The running process's id. */
  get pid(): number | undefined {
    return this.child?.proc.pid;
  }

  /** The running daemon's base URL. */
  get url(): string {
    if (!this.child) throw new Error('the daemon is not running');
    return this.child.url;
  }

  get client(): DaemonClient {
    if (!this.child) throw new Error('the daemon is not running');
    return new DaemonClient(this.child.url);
  }

  async start(): Promise<void> {
    this.child = await spawnDaemon(['--config', this.configFile], { SEED_CRM_AUTH_KEY: CRM_KEY });
  }

  /** SIGKILL (no drain, no flush), then start again on the same data directory. */
  async killAndRestart(): Promise<void> {
    await this.kill();
    this.kills++;
    await this.start();
  }

  /** SIGTERM: resolves with how the process ended, or rejects if it is still running after `timeoutMs`. */
  async terminate(timeoutMs: number): Promise<{ code: number | null; signal: NodeJS.Signals | null }> {
    const child = this.child;
    if (!child) throw new Error('the daemon is not running');
    child.proc.kill('SIGTERM');
    let timer: NodeJS.Timeout | undefined;
    const late = new Promise<never>((_, reject) => { timer = setTimeout(() => reject(new Error(`the daemon did not exit within ${timeoutMs} ms of SIGTERM`)), timeoutMs); });
    try {
      return await Promise.race([child.exited, late]);
    } finally {
      clearTimeout(timer);
    }
  }

  async kill(): Promise<void> {
    const child = this.child;
    if (!child || child.proc.exitCode !== null || child.proc.signalCode !== null) return;
    child.proc.kill('SIGKILL');
    await child.exited;
  }
}

/**
 * The messaging platform's side of the contract: a batch is sent until the daemon acknowledges it (202, or 400 when
 * every event in it is bad). A batch that got no answer — connection refused or reset, 503 — is kept and sent again
 * before anything newer; an acknowledged batch is never sent again.
 */
export class AtLeastOnceSender {
  readonly totals = { posts: 0, unanswered: 0, resentEvents: 0, accepted: 0, ignored: 0, rejected: 0 };
  /** Answers: `202`, `400`, or the status and error code of a refusal (`503 ERR_STORE_UNAVAILABLE`; 0 = no answer). */
  readonly answers: Record<string, number> = {};
  private readonly queue: Array<{ events: unknown[]; tries: number }> = [];

  constructor(private readonly client: () => DaemonClient) {}

  get backlog(): number {
    return this.queue.length;
  }

  enqueue(events: unknown[]): void {
    if (events.length > 0) this.queue.push({ events, tries: 0 });
  }

  /** Sends the queue in order; stops at the first batch that gets no answer (it stays first in line). */
  async flush(): Promise<void> {
    while (this.queue.length > 0) {
      const batch = this.queue[0]!;
      if (batch.tries > 0) this.totals.resentEvents += batch.events.length;
      batch.tries++;
      this.totals.posts++;
      let result: IngestResult;
      try {
        result = await this.client().ingest(batch.events);
      } catch (err) {
        if (err instanceof DaemonRequestError) this.count(`${err.status} ${err.code}`);
        if (err instanceof DaemonRequestError && err.retryable) {
          this.totals.unanswered++;
          return;
        }
        throw err;
      }
      this.count(result.accepted > 0 ? '202' : '400');
      this.queue.shift();
      this.totals.accepted += result.accepted;
      this.totals.ignored += result.ignored;
      this.totals.rejected += result.rejected.length;
    }
  }

  private count(answer: string): void {
    this.answers[answer] = (this.answers[answer] ?? 0) + 1;
  }

  /** Flushes until the whole queue is acknowledged. */
  async drain(timeoutMs: number): Promise<void> {
    const deadline = Date.now() + timeoutMs;
    for (;;) {
      await this.flush();
      if (this.queue.length === 0) return;
      if (Date.now() > deadline) throw new Error(`${this.queue.length} batch(es) still unacknowledged after ${timeoutMs} ms`);
      await sleep(50);
    }
  }
}

/**
 * Posts the plan on its timeline, one batch per `sliceMs`, through the sender (unacknowledged batches go again first).
 * `onSlice(i)` runs before slice i is sent: faults and repairs happen there, in step with the stream.
 */
export async function sendStream(plan: readonly PlannedEvent[], sender: AtLeastOnceSender, opts: { sliceMs: number; onSlice?: (i: number) => Promise<void> | void }): Promise<void> {
  const t0 = Date.now();
  for (const [i, slice] of sliceStream(plan, opts.sliceMs).entries()) {
    await sleep(t0 + i * opts.sliceMs - Date.now());
    await opts.onSlice?.(i);
    sender.enqueue(slice.map((p) => p.event));
    await sender.flush();
  }
}

/** The phone a CRM request was about (fetch query, or create/update body); every seed-contract request carries it. */
function requestPhone(r: LoggedRequest): string | undefined {
  const body = r.body as { phone?: unknown } | null;
  return r.query.phone ?? (typeof body?.phone === 'string' ? body.phone : undefined);
}

export interface CrmFigures {
  calls: number;
  byRoute: Record<string, number>;
  /** Answers by HTTP status; 0 = no answer (reset, hang, client timeout). */
  byStatus: Record<string, number>;
  callsPerContact: { mean: number; max: number };
  leads: number;
  check: LeadCheck;
}

export function crmFigures(crm: ReferenceCrm, expected: ReadonlyMap<string, ContactState>): CrmFigures {
  const requests = crm.requests();
  const count = (key: (r: LoggedRequest) => string | undefined) => {
    const out: Record<string, number> = {};
    for (const r of requests) {
      const k = key(r);
      if (k !== undefined) out[k] = (out[k] ?? 0) + 1;
    }
    return out;
  };
  const perContact = Object.values(count(requestPhone));
  const leads = crm.leads();
  return {
    calls: requests.length,
    byRoute: count((r) => r.route),
    byStatus: count((r) => String(r.status)),
    callsPerContact: { mean: round(perContact.reduce((a, b) => a + b, 0) / expected.size), max: Math.max(0, ...perContact) },
    leads: leads.length,
    check: checkLeads(leads, expected),
  };
}

/** Sum of every contact's recorded sync attempts, from the daemon's API. */
export async function recordedAttempts(client: DaemonClient, contactIds: Iterable<string>): Promise<number> {
  let total = 0;
  for (const id of contactIds) total += (await client.contact(TENANT, id))?.attempts ?? 0;
  return total;
}

export const round = (n: number, digits = 2) => Math.round(n * 10 ** digits) / 10 ** digits;

/**
 * Prints a run's figures (outside jest's console capture) and, when SOAK_FIGURES names a directory, writes them to
 * `<dir>/<name>.json` for docs/reliability.md and the benchmark report.
 */
export function reportFigures(name: string, figures: Record<string, unknown>): void {
  const lines = Object.entries(figures).map(([k, v]) => `  ${k.padEnd(22)} ${typeof v === 'object' ? JSON.stringify(v) : String(v)}`);
  process.stdout.write(`\n${name} (${LONG ? 'long' : 'short'} mode)\n${lines.join('\n')}\n`);
  const dir = process.env.SOAK_FIGURES;
  if (dir) {
    mkdirSync(dir, { recursive: true });
    writeFileSync(join(dir, `${name}.json`), `${JSON.stringify({ name, mode: LONG ? 'long' : 'short', at: new Date().toISOString(), ...figures }, null, 2)}\n`);
  }
}
