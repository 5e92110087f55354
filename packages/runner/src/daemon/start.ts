import type { AddressInfo } from 'node:net';
import { checkExamples, closestName, ConfigError, GotHttpClient, SyncEngine } from '@crm-sync/core';
import { prepareTenants } from '../config/tenants';
import { describeStore } from '../config/store-url';
import { KNOWN_ENV, type DaemonConfig } from '../config/types';
import type { TenantSettings } from '../api';
import { createApiServer } from '../http/server';
import { createLogger, type Logger } from '../log';
import { Metrics } from '../metrics';
import { Runner, type ReconfigureResult } from '../runner';
import { systemClock } from '../clock';
import { leaseOwnerId } from '../dispatch/lease-owner';
import { daemonHooks } from './hooks';
import { ReconcileSchedule } from './reconcile-schedule';
import { StoreHealth } from './store-health';
import { openStore } from './store';

export interface Daemon {
  /** The API's base URL, e.g. http://127.0.0.1:8080. */
  readonly url: string;
  readonly runner: Runner;
  /** Stops accepting, drains in-flight syncs (up to the config's drain time), closes the store. Idempotent. */
  stop(): Promise<void>;
  /**
   * Applies a changed config without a restart (`crm-sync run` on SIGHUP): tenants added, removed or changed (their
   * mapping files read again), with their reconcile schedules (see Runner.reconfigure), the ingest tokens, the
   * allow-list, the log level, the drain time and the retry policy. Other settings that changed (listen, store, body
   * and client limits, lease, plugins) need a restart: they are named, not applied, and new tenants are checked
   * against the running plugins.
   * A tenant that does not compile changes nothing: it throws, and the daemon goes on as it was.
   */
  reload(config: DaemonConfig): Promise<ReloadResult>;
}

export interface ReloadResult extends ReconfigureResult {
  /** Settings besides tenants that changed and were applied, as the config file names them: logLevel, drain, retry, ingestToken (with previousIngestToken), allowHosts. */
  applied: string[];
  /** Settings that differ from the running ones and need a restart to apply. */
  needRestart: string[];
}

/** The settings besides tenants that a reload cannot apply: any of them changed needs a restart. (Tokens, allowHosts, logLevel, drainMs and retry apply.) */
const RESTART_SETTINGS = ['listen', 'dataDir', 'store', 'maxBodyBytes', 'clientRequestsPerSecond', 'leaseMs', 'plugins', 'pluginDir'] as const;

/** A setting as the config file spells it (`drain`, not the resolved `drainMs`), for what a reload reports. */
function configKey(setting: keyof DaemonConfig): string {
  return ({ drainMs: 'drain', leaseMs: 'lease', pluginDir: 'plugins (the config file moved)' } as Partial<Record<keyof DaemonConfig, string>>)[setting] ?? setting;
}

/** Every ingest token a config accepts: the current one, and the previous one while senders switch. */
function acceptedTokens(config: DaemonConfig): string[] {
  return [config.ingestToken, config.previousIngestToken].filter((t): t is string => t !== undefined);
}

export interface DaemonOptions {
  logger?: Logger;
  /** The environment the config was read with, for the start-up check of misspelt CRM_SYNC_ variables. */
  env?: NodeJS.ProcessEnv;
}

/**
 * CRM_SYNC_ variables that crm-sync does not read but that are a typo away from one it does
 * (CRM_SYNC_INGEST_TOKN): silently ignored, such a variable can leave the API without its token. Other CRM_SYNC_
 * names (a secret an operator named so) are none of our business.
 */
export function misspeltEnv(env: NodeJS.ProcessEnv): Array<{ name: string; meant: string }> {
  return Object.keys(env).filter((name) => name.startsWith('CRM_SYNC_') && !KNOWN_ENV.includes(name)).sort()
    .flatMap((name) => {
      const meant = closestName(name, KNOWN_ENV);
      return meant === undefined ? [] : [{ name, meant }];
    });
}

/**
 * A mapping whose golden examples fail sends requests other than the ones its author wrote down: worth a warning at
 * start-up (not a refusal: examples can lag behind a mapping that is right). Each mapping file is run once.
 */
async function warnOfFailingExamples(tenants: readonly TenantSettings[], logger: Logger): Promise<void> {
  // Tenants sharing a mapping file share its compiled mapping (compileMapping caches it).
  const byMapping = new Map<TenantSettings['mapping'], string[]>();
  for (const t of tenants) byMapping.set(t.mapping, [...(byMapping.get(t.mapping) ?? []), t.name]);
  for (const [mapping, names] of byMapping) {
    const failures = await checkExamples(mapping).catch((err: unknown) => [{ example: '(all)', problems: [String((err as Error)?.message ?? err)] }]);
    if (failures.length === 0) continue;
    const count = mapping.definition.examples?.length ?? 0;
    logger.warn({ tenants: names, mapping: mapping.file, failed: failures.map((f) => f.example), first: failures[0]!.problems[0] },
      `${failures.length} of the ${count} golden examples of ${mapping.file ?? mapping.name} fail: its requests are not the ones written down (crm-sync validate ${mapping.file ?? '<file>'} shows them)`);
  }
}

function listen(server: ReturnType<typeof createApiServer>, host: string, port: number): Promise<AddressInfo> {
  return new Promise((resolve, reject) => {
    server.once('error', reject);
    server.listen(port, host, () => {
      server.off('error', reject);
      resolve(server.address() as AddressInfo);
    });
  });
}

/**
 * Starts the daemon: compiles every tenant (a bad mapping fails here, before anything listens), opens the store,
 * starts the HTTP API and then the runner (which resumes every pending contact on time).
 */
export async function startDaemon(config: DaemonConfig, opts: DaemonOptions = {}): Promise<Daemon> {
  const logger = opts.logger ?? createLogger({ level: config.logLevel });
  for (const { name, meant } of misspeltEnv(opts.env ?? process.env)) {
    logger.warn({ variable: name, meant }, `${name} is set, and crm-sync reads no such variable: did you mean ${meant}?`);
  }
  const tenants = prepareTenants(config);
  await warnOfFailingExamples(tenants, logger);
  const opened = await openStore(config.store);
  const { rateLimits, warning } = opened;
  if (warning) logger.warn({ store: describeStore(config.store) }, warning);
  // The runner writes through the watched store, so a failing disk or Redis shows in /readyz and /metrics.
  const health = new StoreHealth(opened.store, { now: () => Date.now(), logger });
  const store = health.store;
  const http = new GotHttpClient({ allowHosts: config.allowHosts });
  const engine = new SyncEngine({ http });
  /** The config as it runs: the start's, with what each reload applied (tenants, tokens, allowHosts, logLevel, drainMs). */
  let running = config;
  // The contacts gauge reads the runner's counts at scrape time, so it is never stale.
  const metrics: Metrics = new Metrics(() => runner.status(), { storeUp: () => health.up, storeReachable: () => health.reachable });
  const runner: Runner = new Runner({ store, engine, tenants, retry: config.retry, leaseMs: config.leaseMs, rateLimits, hooks: daemonHooks(metrics, logger), logger });
  let draining = false;
  const server = createApiServer({
    backend: runner,
    tenants: () => runner.tenantList(),
    // Asked at every request: a reload rotates the tokens.
    ingestToken: () => acceptedTokens(running),
    maxBodyBytes: config.maxBodyBytes,
    clientRequestsPerSecond: config.clientRequestsPerSecond,
    metrics,
    logger,
    isReady: () => !draining,
    storeHealth: () => health.check(),
    storeReachable: () => health.reachable,
  });

  // Listen before the runner starts: a daemon that cannot bind its port must not have claimed a contact, or taken
  // over a dead runner's, first. Events accepted in between wait in the store; start() finds them due.
  let address: AddressInfo;
  try {
    address = await listen(server, config.listen.host, config.listen.port);
  } catch (err) {
    await store.close();
    const e = err as NodeJS.ErrnoException;
    throw new ConfigError(`listen: cannot listen on ${config.listen.host}:${config.listen.port} (${e.code ?? e.message})`, 'ERR_LISTEN');
  }
  await runner.start();
  // One owner for every schedule of this daemon, so a reload's new schedule goes on holding the job leases.
  const reconcileOwner = leaseOwnerId();
  const scheduleReconciles = (): ReconcileSchedule => {
    const schedule = new ReconcileSchedule(runner, running.tenants, { clock: systemClock, logger, metrics, store, owner: reconcileOwner });
    schedule.start();
    return schedule;
  };
  let reconciles = scheduleReconciles();
  const host = address.family === 'IPv6' ? `[${address.address}]` : address.address;
  const url = `http://${host}:${address.port}`;
  logger.info({ url, store: describeStore(config.store), tenants: tenants.map((t) => t.name), auth: config.ingestToken ? 'bearer' : 'none' }, 'crm-sync daemon listening');

  let stopping: Promise<void> | undefined;
  const stop = () => (stopping ??= (async () => {
    draining = true;
    const { drainMs } = running;
    logger.info({ drainMs }, 'stopping: no new requests, draining in-flight syncs');
    const closed = new Promise<void>((resolve) => server.close(() => resolve()));
    server.closeIdleConnections();
    // Requests already inside (an ingest waiting for its commit) may finish; a client holding a connection open may not stall us.
    const giveUp = setTimeout(() => server.closeAllConnections(), drainMs);
    await closed;
    clearTimeout(giveUp);
    await reloading;
    await reconciles.close();
    // Attempts still running after the drain are handed back, and may still get their answer (a lead id) until their
    // request times out: the store stays open for that long, so the answer is kept.
    await runner.stop({ drainMs, settleMs: runner.longestRequestTimeoutMs() + 1000 });
    await store.close();
    // The CRM connections: idle keep-alive sockets, and a request still unanswered whose answer nothing could keep.
    http.close();
    logger.info('stopped');
  })());

  let reloading: Promise<unknown> = Promise.resolve();
  const reload = (next: DaemonConfig): Promise<ReloadResult> => {
    const run = reloading.then(async (): Promise<ReloadResult> => {
      if (stopping) throw new Error('the daemon is stopping');
      const differs = (a: unknown, b: unknown) => JSON.stringify(a) !== JSON.stringify(b);
      const needRestart = RESTART_SETTINGS.filter((k) => differs(next[k], running[k])).map(configKey);
      // Checked against the plugins that run (a new plugin needs a restart) and the new allow-list (applied next).
      const nextTenants = prepareTenants({ ...next, plugins: running.plugins, pluginDir: running.pluginDir });
      const applied: string[] = (['allowHosts', 'logLevel', 'drainMs', 'retry'] as const).filter((k) => differs(next[k], running[k])).map(configKey);
      if (differs(acceptedTokens(next), acceptedTokens(running))) applied.push('ingestToken');
      // Before the tenants change: a new tenant's first sync may already go to a newly allowed host.
      http.setAllowHosts(next.allowHosts);
      if (next.logLevel !== running.logLevel) logger.level = next.logLevel;
      running = {
        ...running, allowHosts: next.allowHosts, logLevel: next.logLevel, drainMs: next.drainMs, retry: next.retry, ingestToken: next.ingestToken,
        previousIngestToken: next.previousIngestToken,
      };
      await reconciles.close();
      let changes: Awaited<ReturnType<Runner['reconfigure']>>;
      try {
        changes = await runner.reconfigure(nextTenants, { drainMs: running.drainMs, retry: running.retry });
        running = { ...running, tenants: next.tenants };
      } finally {
        reconciles = scheduleReconciles();
      }
      if (needRestart.length > 0) logger.warn({ settings: needRestart }, 'reload: these settings changed and need a restart; not applied');
      for (const tenant of changes.mappingChanged) {
        logger.info({ tenant }, `reload: the mapping changed; synced contacts are sent with it at their next change (crm-sync resync ${tenant} --all sends them now)`);
      }
      logger.info({ ...changes, applied }, 'reloaded');
      return { ...changes, applied, needRestart };
    });
    reloading = run.catch(() => undefined);
    return run;
  };

  return { url, runner, stop, reload };
}
