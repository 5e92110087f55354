/**
 * A daemon on Redis while Redis is gone (killed, then started again on its AOF): the daemon says so at once, on
 * /readyz (503, reason store, DISCONNECTED), on crm_sync_store_up and in its log, answers /v1/status with a 503
 * rather than waiting, refuses an ingest at once (503: nothing stored), stops within its bounds, and is ready again
 * when Redis is back.
 */
import { startReferenceCrm, type ReferenceCrm } from '@crm-sync/testkit';
import { createLogger, resolveConfig, startDaemon, type Daemon } from '@crm-sync/runner';
import { CRM_KEY, REPO, SEED_MAPPING, TENANT, event, get, post } from './daemon.support';
import { describeWithRedis, RedisServer } from './redis.support';

let redis: RedisServer | undefined;
let crm: ReferenceCrm | undefined;
let daemon: Daemon | undefined;
afterEach(async () => {
  await daemon?.stop().catch(() => undefined);
  daemon = undefined;
  await redis?.stop();
  redis = undefined;
  await crm?.close();
  crm = undefined;
});

/** Polls (real time) until cond holds. */
async function until(what: string, cond: () => Promise<boolean>, timeoutMs = 10_000): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  while (!(await cond())) {
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 50));
  }
}

/** A GET that must answer within `ms` (a request that waits for Redis would not). */
async function quickGet(url: string, ms = 2000): Promise<{ status: number; body: string }> {
  const res = await fetch(url, { signal: AbortSignal.timeout(ms) });
  return { status: res.status, body: await res.text() };
}

describeWithRedis('the daemon while Redis is gone', () => {
  it('says so at once on /readyz, the store gauge, the log and /v1/status; is ready again when Redis is back; a change made meanwhile is synced', async () => {
    redis = await RedisServer.start();
    crm = await startReferenceCrm({ auth: { style: 'auth-key', key: CRM_KEY } });
    const lines: string[] = [];
    const config = resolveConfig({
      listen: '127.0.0.1:0', store: redis.url(), allowHosts: ['127.0.0.1'], drain: '1s',
      tenants: { [TENANT]: { mapping: SEED_MAPPING, baseUrl: crm.url, quiet: '100ms', maxWait: '1s' } },
    }, { name: 'redis outage test', baseDir: REPO, labels: {} }, {});
    daemon = await startDaemon(config, { logger: createLogger({ level: 'info', destination: { write: (l: string) => { lines.push(l); } } }) });
    expect((await get(`${daemon.url}/readyz`)).status).toBe(200);

    await redis.kill();
    await until('/readyz to say the store is unreachable', async () => (await quickGet(`${daemon!.url}/readyz`)).status === 503);
    expect(JSON.parse((await quickGet(`${daemon.url}/readyz`)).body)).toMatchObject({ reason: 'store', store: { up: false, error: 'DISCONNECTED', reachable: false } });
    const metrics = await quickGet(`${daemon.url}/metrics`);
    expect(metrics.body).toMatch(/^crm_sync_store_up 0$/m);
    expect(metrics.body).not.toMatch(/^crm_sync_contacts\{/m);
    const status = await quickGet(`${daemon.url}/v1/status`);
    expect(status.status).toBe(503);
    expect(JSON.parse(status.body)).toMatchObject({ error: { code: 'ERR_STORE_UNAVAILABLE' } });
    expect(lines.map((l) => JSON.parse(l).msg)).toContain('store: the connection is lost; /readyz answers 503, and calls wait until it is back');

    // An ingest is refused at once (503, Retry-After), not held in memory for the outage; sent again once Redis is
    // back, it is accepted and synced.
    const refused = await fetch(`${daemon.url}/v1/events`, { method: 'POST', headers: { 'content-type': 'application/json' }, body: JSON.stringify(event(1)), signal: AbortSignal.timeout(2000) });
    expect(refused.status).toBe(503);
    expect(refused.headers.get('retry-after')).toBe('5');
    expect(await refused.json()).toMatchObject({ error: { code: 'ERR_STORE_UNAVAILABLE', message: 'the store is unreachable (its connection is lost); nothing was stored: send the events again later' } });
    await redis.restart();
    await until('/readyz ready again', async () => (await quickGet(`${daemon!.url}/readyz`)).status === 200);
    expect((await post(`${daemon.url}/v1/events`, event(1))).status).toBe(202);
    expect((await quickGet(`${daemon.url}/metrics`)).body).toMatch(/^crm_sync_store_up 1$/m);
    expect(lines.map((l) => JSON.parse(l).msg)).toContain('store: connected again');
    await until('the lead', async () => crm!.leads().length === 1);
    // Its own stop closes the connection: that is not an outage.
    const stopping = daemon;
    daemon = undefined;
    await stopping.stop();
    await new Promise((r) => setTimeout(r, 200)); // the connection's close event comes after QUIT's answer
    expect(lines.map((l) => JSON.parse(l).msg).filter((m: string) => m.startsWith('store: the connection is lost'))).toHaveLength(1);
  });

  it('a daemon told to stop while Redis is gone stops within its bounds (the hand-back is not waited for past 5 s)', async () => {
    redis = await RedisServer.start();
    crm = await startReferenceCrm({ auth: { style: 'auth-key', key: CRM_KEY } });
    crm.addFault({ route: 'fetch', latencyMs: 3000, times: 1 });
    const config = resolveConfig({
      listen: '127.0.0.1:0', store: redis.url(), allowHosts: ['127.0.0.1'], drain: '200ms',
      tenants: { [TENANT]: { mapping: SEED_MAPPING, baseUrl: crm.url, quiet: '50ms', maxWait: '1s' } },
    }, { name: 'redis outage test', baseDir: REPO, labels: {} }, {});
    daemon = await startDaemon(config, { logger: createLogger({ level: 'silent' }) });
    await post(`${daemon.url}/v1/events`, event(1));
    await until('the fetch on the wire', async () => crm!.requests().some((r) => r.route === 'fetch'));
    await redis.kill();
    const started = Date.now();
    const stopping = daemon;
    daemon = undefined;
    await stopping.stop();
    // drain 200 ms + the hand-back's 5 s at most (no settle: the store could not keep an answer), not "until Redis is back".
    expect(Date.now() - started).toBeLessThan(8_000);
  }, 20_000);
});
