import type { Redis } from 'ioredis';
import { REQUEST_BURST, type RateLimitFactory, type TenantRateLimit } from '../../dispatch/rate-limit';

/**
 * The token bucket of ../../dispatch/token-bucket.ts, kept in one Redis hash per tenant (`P rate:<tenant>`: tokens,
 * updated, paused_until) so every runner of the tenant draws from the same budget and sees the same 429 pause.
 * Each operation is one script: refill by elapsed time, then act. Times are the runners' clocks (keep them in sync
 * with NTP; a runner whose clock is behind simply refills later).
 *
 * ARGV: P, tenant, op, now, perSecond ('' = unlimited), burst, n. `take` answers -1 when it took a token, else
 * when to ask again.
 */
const RATE = `
local key = ARGV[1] .. 'rate:' .. ARGV[2]
local op, now, perSecond, burst, n = ARGV[3], tonumber(ARGV[4]), tonumber(ARGV[5]), tonumber(ARGV[6]), tonumber(ARGV[7])
local state = redis.call('HMGET', key, 'tokens', 'updated', 'paused_until')
local paused = tonumber(state[3]) or 0
if op == 'pause' then
  if n > paused then redis.call('HSET', key, 'paused_until', string.format('%d', n)) end
  return 0
end
local function readyAt(tokens)
  local at = math.max(now, paused)
  if perSecond and tokens < 1 then at = math.max(at, now + math.ceil((1 - tokens) / perSecond * 1000)) end
  return string.format('%d', at)
end
if not perSecond then
  if op == 'take' and now >= paused then return -1 end
  return readyAt(1)
end
local capacity = math.max(1, burst)
local tokens = tonumber(state[1]) or capacity
local updated = tonumber(state[2]) or now
if now > updated then
  tokens = math.min(capacity, tokens + (now - updated) / 1000 * perSecond)
  updated = now
end
local result
if op == 'take' and now >= paused and tokens >= 1 then
  tokens = tokens - 1
  result = -1
else
  result = readyAt(tokens)
end
redis.call('HSET', key, 'tokens', string.format('%.6f', tokens), 'updated', string.format('%d', updated))
return result
`;

type Op = 'take' | 'pause' | 'ready';

/** Per-tenant budgets shared by every runner on this Redis (same key prefix). */
export function redisRateLimits(redis: Redis, prefix: string): RateLimitFactory {
  redis.defineCommand('crmSyncRate', { numberOfKeys: 0, lua: RATE });
  const call = (redis as unknown as { crmSyncRate(...args: Array<string | number>): Promise<number | string> }).crmSyncRate.bind(redis);
  return (tenant, requestsPerSecond): TenantRateLimit => {
    const run = async (op: Op, now: number, n = 0) => Number(await call(prefix, tenant, op, now, requestsPerSecond ?? '', REQUEST_BURST, n));
    return {
      take: async (now) => {
        const answer = await run('take', now);
        return answer < 0 ? undefined : answer;
      },
      pause: async (until) => { await run('pause', until, until); },
      readyAt: (now) => run('ready', now),
    };
  };
}
