import { ConfigError } from '@crm-sync/core';
import type { StoreLocation } from '../config/store-url';
import { SqliteStore } from '../store/sqlite/sqlite-store';
import type { Store } from '../store/types';

/** Opens the configured store. SQLite is embedded; Redis (several runners) comes with the scale-out work. */
export function openStore(location: StoreLocation): Store {
  switch (location.kind) {
    case 'sqlite':
      return new SqliteStore(location.path);
    case 'redis':
      throw new ConfigError(`store: redis store not available in this build (${location.url.replace(/\/\/[^@]*@/, '//***@')}); use sqlite:<path>`, 'ERR_STORE_UNAVAILABLE');
  }
}
