import { Redis } from 'ioredis';
import { redisWhere } from '../store/redis/connect';
import { RedisStore } from '../store/redis/redis-store';
import { describeWithRedis, RedisServer } from '@crm-sync/testkit';
import { contact, describeStore } from './store-suite';

const T0 = Date.parse('2024-05-06T09:00:00.000Z');
const WINDOW = { quietMs: 50, maxWaitMs: 200 };

let server: RedisServer | undefined;
let tests = 0;
/** Each store gets its own key prefix on the one server, so tests never see each other's keys. */
const openFresh = (prefix = `t${++tests}:`) => RedisStore.open(server!.url(), { prefix });

describeWithRedis('RedisStore', () => {
  beforeAll(async () => { server = await RedisServer.start(); });
  afterAll(async () => { await server?.stop(); });

  describeStore('RedisStore', () => openFresh());

  describe('RedisStore specifics', () => {
    it('refuses a Redis that may evict keys, naming the setting', async () => {
      const admin = new Redis(server!.url());
      await admin.config('SET', 'maxmemory-policy', 'allkeys-lru');
      try {
        await expect(openFresh()).rejects.toMatchObject({ code: 'ERR_REDIS_UNSUITABLE', message: expect.stringMatching(/maxmemory-policy is allkeys-lru; it must be noeviction/) });
      } finally {
        await admin.config('SET', 'maxmemory-policy', 'noeviction');
        admin.disconnect();
      }
    });

    it('names a Redis by host, port and db, never its password', () => {
      expect(redisWhere('redis://:hunter2@127.0.0.1:6380/3')).toBe('redis://127.0.0.1:6380/3');
      expect(redisWhere('rediss://user:pw@cache.example:6379')).toBe('rediss://cache.example:6379');
    });

    it('reports the AOF settings it runs on', async () => {
      const store = await openFresh();
      expect(store.persistence).toEqual({ aof: true, appendfsync: 'everysec' });
      await store.close();
    });

    it('accept resolves once the change is in Redis: another connection sees it at once', async () => {
      const store = await openFresh('visible:');
      const other = await openFresh('visible:');
      const calls = Array.from({ length: 50 }, (_, i) => store.accept([{ contact: contact({ contactId: `c${i}` }), window: WINDOW }], T0)
        .then(() => other.contactStatus('acme', `c${i}`, T0)));
      expect((await Promise.all(calls)).every((s) => s?.state === 'pending')).toBe(true);
      expect(await other.counts(T0)).toMatchObject({ pending: 50 });
      await Promise.all([store.close(), other.close()]);
    });

    it('runners on one Redis share each tenant\'s request budget and its 429 pause', async () => {
      const [a, b] = [await openFresh('rate:'), await openFresh('rate:')];
      const [ra, rb] = [a.rateLimits()('acme', 4, T0), b.rateLimits()('acme', 4, T0)];
      // One token saved up, then one every 250 ms, whichever runner takes it: a request leaves with each.
      expect(await ra.take(T0)).toBeUndefined();
      expect(await rb.take(T0)).toBe(T0 + 250);
      expect(await rb.readyAt(T0)).toBe(T0 + 250);
      expect(await rb.take(T0 + 250)).toBeUndefined();
      expect(await ra.take(T0 + 300)).toBe(T0 + 500);
      expect(await ra.take(T0 + 5000)).toBeUndefined(); // idle for seconds: still one saved up, not twenty
      expect(await rb.take(T0 + 5000)).toBe(T0 + 5250);
      // Another tenant has its own budget; a pause stops only its tenant, on every runner.
      const other = b.rateLimits()('globex', undefined, T0);
      await ra.pause(T0 + 9000);
      expect(await rb.take(T0 + 8000)).toBe(T0 + 9000);
      expect(await rb.readyAt(T0 + 8000)).toBe(T0 + 9000);
      expect(await other.take(T0 + 8000)).toBeUndefined();
      expect(await other.take(T0 + 8000)).toBeUndefined(); // unlimited
      await other.pause(T0 + 3000);
      expect(await other.take(T0 + 2000)).toBe(T0 + 3000);
      expect(await other.readyAt(T0 + 2000)).toBe(T0 + 3000);
      await Promise.all([a.close(), b.close()]);
    });

    it('two stores on one Redis never claim the same contact', async () => {
      const a = await openFresh('race:');
      const b = await openFresh('race:');
      await a.accept(Array.from({ length: 200 }, (_, i) => ({ contact: contact({ contactId: `c${i}` }), window: WINDOW })), T0);
      const claims = await Promise.all(Array.from({ length: 20 }, (_, i) =>
        (i % 2 ? a : b).claimDue('acme', { now: T0 + 50, limit: 15, leaseMs: 1000, owner: `r${i}` })));
      const ids = claims.flat().map((c) => c.contactId);
      expect(ids).toHaveLength(200);
      expect(new Set(ids).size).toBe(200);
      await Promise.all([a.close(), b.close()]);
    });
  });
});
