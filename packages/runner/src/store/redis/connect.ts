import { Redis } from 'ioredis';
import { ConfigError } from '@crm-sync/core';

/** What the server's persistence promises about an acknowledged write (docs/scaling.md). */
export interface RedisPersistence {
  aof: boolean;
  /** `always`: fsynced before the answer; `everysec`: at most ~1 s lost on a power cut or kill -9 of Redis; `no`: the OS decides. */
  appendfsync?: 'always' | 'everysec' | 'no';
}

/** Redis for state: a crashed runner must not lose anything, so it is refused unless it can never evict keys. */
export class RedisUnsuitableError extends ConfigError {
  constructor(where: string, message: string) {
    super(`${where}: ${message}`, 'ERR_REDIS_UNSUITABLE');
  }
}

/**
 * One connection, configured as BullMQ recommends for workers: `maxRetriesPerRequest: null`, so a command issued
 * while Redis restarts waits for the reconnect instead of failing after a few retries (an ingest answers late, never
 * falsely), and the offline queue holds commands until then. Only the first connection fails fast: a wrong URL
 * at start-up is an error, a restart later is waited out.
 */
const lastErrors = new WeakMap<Redis, Error>();

export function connectRedis(url: string): Redis {
  let connected = false;
  const redis = new Redis(url, {
    maxRetriesPerRequest: null, enableOfflineQueue: true, lazyConnect: true, connectionName: 'crm-sync',
    retryStrategy: (times) => (connected ? Math.min(times * 50, 2000) : null),
  });
  redis.once('ready', () => { connected = true; });
  // Errors surface where they matter (a failed connect, a command that cannot complete); ioredis would otherwise
  // print every reconnect attempt to stderr, outside the JSON log.
  redis.on('error', (err: Error) => { lastErrors.set(redis, err); });
  return redis;
}

/** `host:port/db` of a URL, never its password: for messages and logs. */
export function redisWhere(url: string): string {
  const u = new URL(url);
  return `${u.protocol}//${u.host}${u.pathname === '/' ? '' : u.pathname}`;
}

function infoField(info: string, name: string): string | undefined {
  return new RegExp(`^${name}:(.*)$`, 'm').exec(info)?.[1]?.trim();
}

/**
 * Connects and checks the server is fit to hold the runner's state: `maxmemory-policy noeviction` (an evicted
 * contact or lease would be silently lost). Reads the policy from INFO, which managed services allow even where
 * CONFIG is disabled. Returns what AOF gives, for the start-up log.
 */
export async function checkRedis(redis: Redis, url: string): Promise<RedisPersistence> {
  const where = `store ${redisWhere(url)}`;
  try {
    await redis.connect();
  } catch (err) {
    const cause = lastErrors.get(redis) ?? (err as Error);
    throw new ConfigError(`${where}: cannot connect (${cause.message})`, 'ERR_STORE_UNAVAILABLE');
  }
  const memory = await redis.info('memory');
  const policy = infoField(memory, 'maxmemory_policy');
  if (policy !== 'noeviction') {
    throw new RedisUnsuitableError(where, `maxmemory-policy is ${policy ?? 'unknown'}; it must be noeviction, or Redis may evict pending contacts and leases under memory pressure (CONFIG SET maxmemory-policy noeviction, and in redis.conf)`);
  }
  const persistence = await redis.info('persistence');
  const aof = infoField(persistence, 'aof_enabled') === '1';
  let appendfsync: RedisPersistence['appendfsync'];
  try {
    const [, value] = (await redis.config('GET', 'appendfsync')) as string[];
    if (value === 'always' || value === 'everysec' || value === 'no') appendfsync = value;
  } catch {
    // CONFIG is disabled on some managed services: the fsync policy is then simply not reported.
  }
  return { aof, appendfsync };
}
