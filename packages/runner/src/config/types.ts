import type { RetryPolicy } from '../api';
import type { LogLevel } from '../log';
import type { StoreLocation } from './store-url';

/** One tenant as configured, before its mapping is compiled (see ./tenants.ts). */
export interface TenantConfig {
  name: string;
  /** Absolute path of the mapping file. */
  mappingFile: string;
  baseUrl?: string;
  quietMs: number;
  maxWaitMs: number;
  concurrency: number;
  requestsPerSecond?: number;
  defaultCountry?: string;
  /** The secret references the tenant's mapping may name (`*`: any characters); absent: any. */
  allowSecrets?: string[];
  /** A reconcile pass over the tenant's synced leads every `everyMs` (from the end of one to the start of the next). */
  reconcile?: { everyMs: number; perSecond?: number; repair: boolean };
}

/** The daemon's configuration, validated and with every default, path and secret resolved. */
export interface DaemonConfig {
  /** The config file, or `command-line flags`: named in error messages. */
  source: string;
  listen: { host: string; port: number };
  /** Absolute. Holds the SQLite database by default and the backfill progress files. */
  dataDir: string;
  store: StoreLocation;
  /** The resolved token (never logged). Absent: the ingest API is open (bind it to localhost). */
  ingestToken?: string;
  /** Accepted too while senders switch to a new ingestToken (resolved; never logged). */
  previousIngestToken?: string;
  maxBodyBytes: number;
  /** API requests a second per client address (429 beyond); 0: no limit. */
  clientRequestsPerSecond: number;
  drainMs: number;
  /** How long a claimed contact is held without renewal (renewed while its sync runs); after a crash elsewhere its contacts resume once this lapses. */
  leaseMs: number;
  logLevel: LogLevel;
  allowHosts: string[];
  plugins: string[];
  /** Where plug-in module names are resolved from (the config file's directory). */
  pluginDir: string;
  retry: RetryPolicy;
  tenants: TenantConfig[];
}

export const DEFAULTS = {
  listen: '127.0.0.1:8080',
  dataDir: './data',
  storeFile: 'crm-sync.db',
  quiet: '5m',
  maxWait: '1h',
  concurrency: 4,
  maxBodyBytes: 5 * 1024 * 1024,
  clientRequestsPerSecond: 200,
  drain: '10s',
  lease: '30s',
  logLevel: 'info' as LogLevel,
  retry: { base: '10s', max: '1h', budget: '24h' },
} as const;

/** Environment variables that override the config, for containers. */
export const ENV_OVERRIDES = {
  listen: 'CRM_SYNC_LISTEN',
  store: 'CRM_SYNC_STORE',
  dataDir: 'CRM_SYNC_DATA_DIR',
  /** The token itself (not a reference): a container's secret arrives as an env var. */
  ingestToken: 'CRM_SYNC_INGEST_TOKEN',
  logLevel: 'CRM_SYNC_LOG_LEVEL',
  /** Comma-separated, added to the config's allowHosts. */
  allowHosts: 'CRM_SYNC_ALLOW_HOSTS',
} as const;

/** Every CRM_SYNC_ variable crm-sync reads: the daemon's overrides, and the CLI's daemon URL. */
export const KNOWN_ENV: readonly string[] = [...Object.values(ENV_OVERRIDES), 'CRM_SYNC_URL'];
