import { isAbsolute, resolve } from 'node:path';
import { ConfigError } from '@crm-sync/core';

/** Where the daemon keeps its state. The embedded default is SQLite; Redis is for several runners. */
export type StoreLocation =
  | { kind: 'sqlite'; /** Absolute path of the database file. */ path: string }
  | { kind: 'redis'; url: string };

/** `sqlite:<path>` (relative to `baseDir`) or `redis://…` / `rediss://…`. `where` names the field, flag or env var. */
export function parseStoreUrl(text: string, baseDir: string, where: string): StoreLocation {
  if (text.startsWith('sqlite:')) {
    const path = text.slice('sqlite:'.length).replace(/^\/\/(?=\/)/, '');
    if (!path) throw new ConfigError(`${where}: sqlite: needs a file path, e.g. sqlite:./data/crm-sync.db`, 'ERR_CONFIG_INVALID');
    return { kind: 'sqlite', path: isAbsolute(path) ? path : resolve(baseDir, path) };
  }
  if (/^rediss?:\/\/./.test(text)) return { kind: 'redis', url: text };
  throw new ConfigError(`${where}: ${JSON.stringify(text)} must be sqlite:<path> or redis://host:port`, 'ERR_CONFIG_INVALID');
}

/** For logs: never the Redis password. */
export function describeStore(store: StoreLocation): string {
  if (store.kind === 'sqlite') return `sqlite:${store.path}`;
  const u = new URL(store.url);
  if (u.password) u.password = '***';
  return u.toString();
}
