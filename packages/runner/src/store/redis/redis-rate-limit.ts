import type { Redis } from 'ioredis';
import type { RateLimitFactory, TenantRateLimit } from '../../dispatch/rate-limit';

/**
 * The token bucket of ../../dispatch/token-bucket.ts, kept in one Redis hash per tenant (`P rate:<tenant>`: tokens,
 * updated, paused_until) so every runner of the tenant draws from the same budget and sees the same 429 pause.
 * Each operation is one script: refill by elapsed time, then act. Times are the runners' clocks (keep them in sync
 * with NTP; a runner whose clock is behind simply refills later).
 *
 * ARGV: P, tenant, op, now, perSecond ('' = unlimited), n.
 */
const RATE = `
local key = ARGV[1] .. 'rate:' .. ARGV[2]
local op, now, perSecond, n = ARGV[3], tonumber(ARGV[4]), tonumber(ARGV[5]), tonumber(ARGV[6])
local state = redis.call('HMGET', key, 'tokens', 'updated', 'paused_until')
local paused = tonumber(state[3]) or 0
if op == 'pause' then
  if n > paused then redis.call('HSET', key, 'paused_until', string.format('%d', n)) end
  return 0
end
if not perSecond then
  if op == 'take' then if now < paused then return 0 end return n end
  if op == 'ready' then return string.format('%d', math.max(now, paused)) end
  return 0
end
local capacity = math.max(1, perSecond)
local tokens = tonumber(state[1]) or capacity
local updated = tonumber(state[2]) or now
if now > updated then
  tokens = math.min(capacity, tokens + (now - updated) / 1000 * perSecond)
  updated = now
end
local result = 0
if op == 'take' then
  if now >= paused then result = math.min(n, math.max(0, math.floor(tokens))) end
  tokens = tokens - result
elseif op == 'charge' then
  tokens = tokens - n
elseif op == 'refund' then
  tokens = math.min(capacity, tokens + n)
elseif op == 'ready' then
  local at = math.max(now, paused)
  if tokens < 1 then at = math.max(at, now + math.ceil((1 - tokens) / perSecond * 1000)) end
  result = string.format('%d', at)
end
redis.call('HSET', key, 'tokens', string.format('%.6f', tokens), 'updated', string.format('%d', updated))
return result
`;

type Op = 'take' | 'charge' | 'refund' | 'pause' | 'ready';

/** Per-tenant budgets shared by every runner on this Redis (same key prefix). */
export function redisRateLimits(redis: Redis, prefix: string): RateLimitFactory {
  redis.defineCommand('crmSyncRate', { numberOfKeys: 0, lua: RATE });
  const call = (redis as unknown as { crmSyncRate(...args: Array<string | number>): Promise<number | string> }).crmSyncRate.bind(redis);
  return (tenant, requestsPerSecond): TenantRateLimit => {
    const run = (op: Op, now: number, n: number) => call(prefix, tenant, op, now, requestsPerSecond ?? '', n);
    return {
      take: async (want, now) => Number(await run('take', now, want)),
      refund: async (n, now) => { await run('refund', now, n); },
      charge: async (n, now) => { await run('charge', now, n); },
      pause: async (until) => { await run('pause', until, until); },
      readyAt: async (now) => Number(await run('ready', now, 0)),
    };
  };
}
