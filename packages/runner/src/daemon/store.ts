import type { StoreLocation } from '../config/store-url';
import type { RateLimitFactory } from '../dispatch/rate-limit';
import { RedisStore } from '../store/redis/redis-store';
import { SqliteStore } from '../store/sqlite/sqlite-store';
import type { Store } from '../store/types';

/** A store and what comes with it: request budgets shared by its runners (Redis), durability caveats for the log. */
export interface OpenedStore {
  store: Store;
  /** Absent: each runner keeps its own budget (SQLite, one machine). */
  rateLimits?: RateLimitFactory;
  /** Something the operator should know at start-up, e.g. a Redis without AOF. */
  warning?: string;
}

/** Opens the configured store: SQLite embedded, or Redis for several runners (refused if it may evict keys). */
export async function openStore(location: StoreLocation): Promise<OpenedStore> {
  switch (location.kind) {
    case 'sqlite':
      return { store: new SqliteStore(location.path) };
    case 'redis': {
      const store = await RedisStore.open(location.url);
      const { aof, appendfsync } = store.persistence;
      const warning = !aof ? 'Redis has AOF off (appendonly no): accepted events since its last snapshot are lost if Redis restarts; see docs/scaling.md'
        : appendfsync === 'no' ? 'Redis fsyncs its AOF only when the OS decides (appendfsync no): a power cut may lose accepted events; see docs/scaling.md'
          : undefined;
      return { store, rateLimits: store.rateLimits(), ...(warning ? { warning } : {}) };
    }
  }
}
