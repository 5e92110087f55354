/**
 * Scale-out: two and three `crm-sync run --store redis://…` processes share one redis-server and one stream of
 * contact changes (sent to any runner). Each contact is synced once per quiet period, never by two runners at once,
 * and the runners share the tenant's rate limit. Needs `pnpm build` (the runners are real child processes).
 */
import { startReferenceCrm, type ReferenceCrm } from '@crm-sync/testkit';
import { CRM_KEY, event } from './daemon.support';
import { callsByPhone, describeWithRedis, overlappingPhones, RedisServer, sleep, startRunners, type Runners } from './redis.support';

const CONTACTS = 24;
const BURST = 3;

let redis: RedisServer;
let crm: ReferenceCrm;
let runners: Runners | undefined;
let db = 0;

describeWithRedis('Several runners on one Redis', () => {
  beforeAll(async () => { redis = await RedisServer.start(); });
  afterAll(async () => { await redis?.stop(); });
  beforeEach(async () => { crm = await startReferenceCrm({ auth: { style: 'auth-key', key: CRM_KEY } }); });
  afterEach(async () => {
    await runners?.killAll();
    runners = undefined;
    await crm.close();
  });

  /**
   * One burst per contact (BURST changes, 40 ms apart, inside the quiet window), each change sent to another runner.
   * Each change carries its source time (`ts`), as the platform's events do: the requests are in flight at once, so
   * a busy runner may store v1 after another runner stored v2, and only `ts` says which is newer.
   */
  async function sendBursts(r: Runners, wave: string): Promise<void> {
    const sends: Array<Promise<unknown>> = [];
    for (let change = 0; change < BURST; change++) {
      const ts = new Date().toISOString();
      for (let n = 0; n < CONTACTS; n++) {
        const client = r.clients[(n + change) % r.clients.length]!;
        sends.push(client.ingest([event(n, { name: `Contact ${n} ${wave} v${change}`, ts })]));
      }
      await sleep(40);
    }
    await Promise.all(sends);
  }

  it.each([2, 3])('%i runners: each contact synced once per quiet period, never two syncs of one contact at once', async (n) => {
    runners = await startRunners(n, redis.url(++db), crm, ['--quiet', '300ms', '--max-wait', '5s']);
    // Slow answers keep syncs in flight while other runners look for work.
    crm.addFault({ route: '*', latencyMs: 30 });

    await sendBursts(runners, 'first');
    await runners.clients[n - 1]!.waitUntilIdle({ timeoutMs: 15_000 });
    let calls = callsByPhone(crm);
    expect(calls.size).toBe(CONTACTS);
    // A new contact: one fetch, one create — one sync of the burst's last state.
    for (const c of calls.values()) expect(c.routes).toEqual({ fetch: 1, create: 1 });
    expect(crm.leads().map((l) => l.name).sort()).toEqual(Array.from({ length: CONTACTS }, (_, i) => `Contact ${i} first v${BURST - 1}`).sort());

    await sendBursts(runners, 'second');
    await runners.clients[0]!.waitUntilIdle({ timeoutMs: 15_000 });
    calls = callsByPhone(crm);
    for (const c of calls.values()) expect(c.routes).toEqual({ fetch: 1, create: 1, update: 1 });
    expect(crm.leads().every((l) => l.name.endsWith(`second v${BURST - 1}`))).toBe(true);
    expect(overlappingPhones(calls)).toEqual([]);
  });

  it('a change during a sync on one runner is synced after it, by whichever runner, once', async () => {
    runners = await startRunners(2, redis.url(++db), crm, ['--quiet', '100ms']);
    crm.addFault({ route: 'create', latencyMs: 600, times: 1 });
    await runners.clients[0]!.ingest([event(1, { name: 'First' })]);
    while (!crm.requests().some((r) => r.route === 'create')) await sleep(10);
    await runners.clients[1]!.ingest([event(1, { name: 'During' })]);
    await runners.clients[1]!.waitUntilIdle({ timeoutMs: 10_000 });
    expect(crm.requests().map((r) => r.route)).toEqual(['fetch', 'create', 'update']);
    expect(crm.leads()).toEqual([expect.objectContaining({ name: 'During' })]);
    expect(overlappingPhones(callsByPhone(crm))).toEqual([]);
  });

  it('a 429 on one runner pauses the tenant on every runner', async () => {
    runners = await startRunners(2, redis.url(++db), crm, ['--quiet', '50ms']);
    crm.addFault({ route: 'fetch', status: 429, retryAfterSec: 1, times: 1 });
    await runners.clients[0]!.ingest([event(1)]);
    while (!crm.requests().some((r) => r.status === 429)) await sleep(10);
    const limited = crm.requests().find((r) => r.status === 429)!;
    // The runner read the 429 after the CRM sent it, so its pause (Retry-After: 1 s) ends after this.
    const answeredAt = Date.parse(limited.at) + limited.durationMs;
    // New contacts on both runners: nobody calls the CRM until the Retry-After has passed.
    await Promise.all([runners.clients[0]!.ingest([event(2)]), runners.clients[1]!.ingest([event(3)])]);
    // (Contact 1 itself retries after its own backoff, up to 10 s by default: not waited for here.)
    while (crm.leads().length < 2) await sleep(20);
    const after = crm.requests().filter((r) => r.status !== 429);
    expect(after.length).toBeGreaterThanOrEqual(4);
    for (const r of after) expect(Date.parse(r.at)).toBeGreaterThanOrEqual(answeredAt + 990);
  });
});
