import { ConfigError } from '@crm-sync/core';
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
      return { store: openSqlite(location.path) };
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

/**
 * The SQLite store at `path`, or an error that names the file and says what to change: SQLite's own words
 * ("unable to open database file") name neither.
 */
function openSqlite(path: string): SqliteStore {
  try {
    return new SqliteStore(path);
  } catch (err) {
    const e = err as NodeJS.ErrnoException;
    const code = e.code ?? '';
    const why = code === 'EACCES' || code === 'EPERM' ? 'permission denied: the directory cannot be created or written by this user'
      : code === 'EEXIST' || code === 'ENOTDIR' ? 'a part of the path is a file, not a directory'
        : code === 'EROFS' ? 'the filesystem is read-only'
          : code === 'SQLITE_CANTOPEN' ? 'the file cannot be opened or created (does its directory exist, and may this user write to it?)'
            : code === 'SQLITE_READONLY' ? 'the file or its directory is read-only for this user (SQLite writes a -wal and a -shm file beside it)'
              : code === 'SQLITE_NOTADB' ? 'the file is not a SQLite database'
                : undefined;
    const detail = why ? `${why} (${code || e.message})` : e.message;
    throw new ConfigError(`store sqlite:${path}: cannot be opened: ${detail}; set another dataDir (CRM_SYNC_DATA_DIR, --data) or store`, 'ERR_STORE_OPEN');
  }
}
