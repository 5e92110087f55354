/**
 * Nothing accepted is lost on Redis: not when a runner is killed with SIGKILL in the middle of a stream (another
 * runner takes over its contacts once their leases lapse, and the create intent prevents a duplicate lead), and not
 * when Redis itself is killed and restarted on its AOF (`appendfsync always`). Needs `pnpm build`.
 */
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { DaemonClient, DaemonRequestError, RedisStore } from '@crm-sync/runner';
import { checkLeads, planStream, sliceStream, startReferenceCrm, type ReferenceCrm } from '@crm-sync/testkit';
import { CRM_KEY, event, seedMappingWithTimeout, spawnDaemon, writeConfig, type ChildDaemon } from './daemon.support';
import { describeWithRedis, RedisServer, sleep, startRunners, type Runners } from './redis.support';

let redis: RedisServer;
let crm: ReferenceCrm;
const children: ChildDaemon[] = [];
let runners: Runners | undefined;

async function until(what: string, check: () => boolean | Promise<boolean>, timeoutMs = 10_000): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  while (!(await check())) {
    if (Date.now() > deadline) throw new Error(`timed out waiting until ${what}`);
    await sleep(20);
  }
}

describeWithRedis('Runners on Redis lose nothing', () => {
  beforeEach(async () => { crm = await startReferenceCrm({ auth: { style: 'auth-key', key: CRM_KEY } }); });
  afterEach(async () => {
    for (const c of children.splice(0)) if (c.proc.exitCode === null && c.proc.signalCode === null) { c.proc.kill('SIGKILL'); await c.exited; }
    await runners?.killAll();
    runners = undefined;
    await crm.close();
    await redis?.stop();
  });

  it('kill -9 of one of two runners mid-stream (its create sent, the id not stored): the other finishes, no duplicate lead', async () => {
    redis = await RedisServer.start();
    const dir = mkdtempSync(join(tmpdir(), 'crm-sync-redis-kill-'));
    // lease 1s: the survivor takes over the dead runner's contacts a second after their claim.
    // A 1 s request timeout: the victim's last writes settle within 3 s (the settle window), its creates within 1 s.
    const config = writeConfig(dir, crm.url, [`store: ${redis.url()}`], seedMappingWithTimeout(dir, 1000));
    const start = async () => {
      const child = await spawnDaemon(['--config', config], { SEED_CRM_AUTH_KEY: CRM_KEY });
      children.push(child);
      return child;
    };
    const [victim, survivor] = [await start(), await start()];
    const clients = [new DaemonClient(victim.url), new DaemonClient(survivor.url)];
    const { redis: inspect } = await RedisStore.open(redis.url());
    /** The victim holds a lease (its pid is in the lease token) on a contact whose create is waiting for its answer. */
    const victimMidCreate = async () => {
      if (!crm.requests().some((r) => r.route === 'create' && r.status === 0)) return false;
      const keys = await inspect.keys('crm-sync:c:acme:*');
      const tokens = await Promise.all(keys.map((k) => inspect.hget(k, 'lease_token')));
      return tokens.some((t) => t?.includes(`:${victim.proc.pid}:`));
    };

    crm.addFault({ route: 'create', latencyMs: 300 });
    const { plan, expected } = planStream({ contacts: 40, seed: 11, spanMs: 2000 });
    let killed = false;
    for (const [slice, planned] of sliceStream(plan, 100).entries()) {
      const events = planned.map((p) => p.event);
      if (!killed && slice >= 6) {
        await until('the victim has a create in flight', victimMidCreate);
        victim.proc.kill('SIGKILL');
        await victim.exited;
        killed = true;
        await expect(clients[0]!.ingest([event(999)])).rejects.toBeInstanceOf(DaemonRequestError);
      }
      // Before the kill, slices alternate between the runners; after it, the survivor gets everything.
      if (events.length > 0) await clients[killed ? 1 : slice % 2]!.ingest(events);
      await sleep(50);
    }
    expect(killed).toBe(true);
    await clients[1]!.waitUntilIdle({ timeoutMs: 20_000 });
    expect(checkLeads(crm.leads(), expected).problems).toEqual([]);
    inspect.disconnect();
    rmSync(dir, { recursive: true, force: true });
  });

  it('Redis killed and restarted on its AOF (appendfsync always): every accepted event is synced', async () => {
    redis = await RedisServer.start({ appendfsync: 'always' });
    runners = await startRunners(2, redis.url(), crm, ['--quiet', '1s', '--max-wait', '5s']);
    const [a, b] = runners.clients as [DaemonClient, DaemonClient];
    // Accepted (202) by either runner, then Redis dies before any of them is due.
    await Promise.all(Array.from({ length: 30 }, (_, n) => (n % 2 ? a : b).ingest([event(n, { name: `Before ${n}` })])));
    await redis.kill();
    // Sent while Redis is down: refused at once (503, Retry-After, nothing stored), and the client sends it again
    // as told, so it is accepted once Redis is back.
    const duringOutage = a.ingest(Array.from({ length: 5 }, (_, i) => event(100 + i, { name: `During ${i}` })));
    await sleep(300);
    await redis.restart();
    expect(await duringOutage).toMatchObject({ accepted: 5, rejected: [] });

    await b.waitUntilIdle({ timeoutMs: 20_000 });
    const names = crm.leads().map((l) => l.name).sort();
    expect(names).toEqual([...Array.from({ length: 30 }, (_, n) => `Before ${n}`), ...Array.from({ length: 5 }, (_, i) => `During ${i}`)].sort());
    expect(crm.requests().filter((r) => r.route === 'create')).toHaveLength(35);
  });
});
