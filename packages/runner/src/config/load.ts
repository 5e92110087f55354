import { readFileSync } from 'node:fs';
import { dirname, isAbsolute, resolve } from 'node:path';
import Ajv, { type ErrorObject } from 'ajv';
import { parseDocument } from 'yaml';
import { ConfigError, formatAjvErrors, resolveSecretRef, type FieldError } from '@crm-sync/core';
import schema from '../../schema/config.schema.json';
import type { LogLevel } from '../log';
import { parseDuration } from './duration';
import { parseStoreUrl } from './store-url';
import { DEFAULTS, ENV_OVERRIDES, type DaemonConfig, type TenantConfig } from './types';

export { schema as configSchema };

/** The config file's shape (config.schema.json). */
export interface ConfigFile {
  listen?: string;
  dataDir?: string;
  store?: string;
  ingestToken?: string;
  previousIngestToken?: string;
  maxBodyBytes?: number;
  clientRequestsPerSecond?: number;
  drain?: string;
  lease?: string;
  logLevel?: LogLevel;
  allowHosts?: string[];
  plugins?: string[];
  retry?: { base?: string; max?: string; budget?: string };
  tenants: Record<string, {
    mapping: string; baseUrl?: string; quiet?: string; maxWait?: string;
    concurrency?: number; requestsPerSecond?: number; defaultCountry?: string; allowSecrets?: string[];
    reconcile?: { every: string; perSecond?: number; repair?: boolean };
  }>;
}

/** A config that fails validation. `errors` name each field (or the flag / env var it came from) and the reason. */
export class InvalidConfigError extends ConfigError {
  readonly errors: FieldError[];
  constructor(readonly source: string, errors: FieldError[]) {
    super(`${source}: ${errors.map((e) => `${e.field}: ${e.message}`).join('; ')}`, 'ERR_CONFIG_INVALID');
    this.errors = errors;
  }
}

// verbose: errors carry their schema, so an unknown field can be told the one it most likely meant.
const ajv = new Ajv({ allErrors: true, strict: false, verbose: true });
const validate = ajv.compile<ConfigFile>(schema);

// ajv's "must match pattern ..." tells nobody what to write; say it in words.
const PATTERN_MEANS: Record<string, string> = {
  [schema.definitions.duration.pattern]: 'must be a duration such as 300ms, 5m or 1h',
  [schema.definitions.secretRef.pattern]: 'must be a secret reference env:NAME or file:PATH, never the secret itself',
  [schema.definitions.tenantName.pattern]: 'must be a tenant name: letters, digits, ".", "_" or "-", at most 64',
  [schema.properties.listen.pattern]: 'must be host:port, e.g. 127.0.0.1:8080 or [::1]:8080',
  [schema.properties.store.pattern]: 'must be sqlite:<path> or redis://host:port',
  [schema.definitions.tenant.properties.baseUrl.pattern]: 'must be an http(s) URL without query or fragment',
  [schema.definitions.tenant.properties.defaultCountry.pattern]: 'must be a two-letter country code such as IN',
};

function fieldErrors(errors: ErrorObject[] | null | undefined): FieldError[] {
  const readable = (errors ?? []).filter((e) => e.keyword !== 'propertyNames').map((e) => ({
    ...e,
    // A bad tenant name is reported at the name itself.
    instancePath: e.propertyName !== undefined ? `${e.instancePath}/${e.propertyName}` : e.instancePath,
    message: e.keyword === 'pattern' ? PATTERN_MEANS[String(e.params.pattern)] ?? e.message : e.message,
  }));
  return formatAjvErrors(readable);
}

/** Where each field came from when it was not the config file: an env var or a flag. Errors name that instead. */
type Labels = Record<string, string>;

interface Source {
  /** A file path, or `command-line flags`. */
  name: string;
  /** Relative paths in the source are resolved against this directory. */
  baseDir: string;
  labels: Labels;
}

function applyEnv(raw: ConfigFile, env: NodeJS.ProcessEnv, labels: Labels): { raw: ConfigFile; token?: string } {
  const out: ConfigFile = { ...raw };
  const cwd = process.cwd();
  const set = (field: 'listen' | 'store' | 'dataDir' | 'logLevel', value: string) => {
    (out as unknown as Record<string, string>)[field] = value;
    labels[field] = ENV_OVERRIDES[field];
  };
  const v = (name: string) => (env[name] === undefined || env[name] === '' ? undefined : env[name]);
  const listen = v(ENV_OVERRIDES.listen);
  if (listen) set('listen', listen);
  const store = v(ENV_OVERRIDES.store);
  // Paths from the environment are relative to the working directory, not to the config file.
  if (store) set('store', store.startsWith('sqlite:') && !isAbsolute(store.slice(7)) ? `sqlite:${resolve(cwd, store.slice(7))}` : store);
  const dataDir = v(ENV_OVERRIDES.dataDir);
  if (dataDir) set('dataDir', resolve(cwd, dataDir));
  const level = v(ENV_OVERRIDES.logLevel);
  if (level) set('logLevel', level);
  const hosts = v(ENV_OVERRIDES.allowHosts);
  if (hosts) out.allowHosts = [...(raw.allowHosts ?? []), ...hosts.split(',').map((h) => h.trim()).filter(Boolean)];
  return { raw: out, token: v(ENV_OVERRIDES.ingestToken) };
}

function parseListen(text: string): { host: string; port: number } {
  const m = /^(?:\[([^\]]+)\]|([^:]+)):(\d+)$/.exec(text)!;
  return { host: m[1] ?? m[2], port: Number(m[3]) };
}

/** Validates a config object (from a file or built from flags), applies env overrides and defaults. */
export function resolveConfig(input: unknown, source: Source, env: NodeJS.ProcessEnv = process.env): DaemonConfig {
  const labels: Labels = { ...source.labels };
  const isObject = typeof input === 'object' && input !== null && !Array.isArray(input);
  const { raw, token } = applyEnv((isObject ? input : {}) as ConfigFile, env, labels);
  if (!isObject) throw new InvalidConfigError(source.name, [{ field: '(root)', message: 'must be a mapping of settings (YAML object)' }]);
  if (!validate(raw)) {
    throw new InvalidConfigError(source.name, fieldErrors(validate.errors).map((e) => ({ ...e, field: labels[e.field] ?? e.field })));
  }
  const label = (field: string) => labels[field] ?? field;
  const fail = (field: string, err: unknown): never => {
    throw new InvalidConfigError(source.name, [{ field: label(field), message: (err as Error).message }]);
  };
  const path = (p: string) => (isAbsolute(p) ? p : resolve(source.baseDir, p));

  const listen = parseListen(raw.listen ?? DEFAULTS.listen);
  if (listen.port > 65535) fail('listen', new Error(`port ${listen.port} is out of range`));
  const dataDir = path(raw.dataDir ?? DEFAULTS.dataDir);
  const store = parseStoreUrl(raw.store ?? `sqlite:${resolve(dataDir, DEFAULTS.storeFile)}`, source.baseDir, label('store'));

  let ingestToken = token;
  if (!ingestToken && raw.ingestToken) {
    try { ingestToken = resolveSecretRef(raw.ingestToken); } catch (err) { fail('ingestToken', err); }
  }
  let previousIngestToken: string | undefined;
  if (raw.previousIngestToken) {
    if (!ingestToken) fail('previousIngestToken', new Error('needs ingestToken (the token senders switch to)'));
    try { previousIngestToken = resolveSecretRef(raw.previousIngestToken); } catch (err) { fail('previousIngestToken', err); }
  }

  const duration = (text: string, field: string) => parseDuration(text, label(field));
  const tenants: TenantConfig[] = Object.entries(raw.tenants).map(([name, t]) => ({
    name,
    mappingFile: path(t.mapping),
    baseUrl: t.baseUrl,
    quietMs: duration(t.quiet ?? DEFAULTS.quiet, `tenants.${name}.quiet`),
    maxWaitMs: duration(t.maxWait ?? DEFAULTS.maxWait, `tenants.${name}.maxWait`),
    concurrency: t.concurrency ?? DEFAULTS.concurrency,
    requestsPerSecond: t.requestsPerSecond,
    defaultCountry: t.defaultCountry,
    ...(t.allowSecrets ? { allowSecrets: t.allowSecrets } : {}),
    ...(t.reconcile ? {
      reconcile: { everyMs: duration(t.reconcile.every, `tenants.${name}.reconcile.every`), perSecond: t.reconcile.perSecond, repair: t.reconcile.repair ?? false },
    } : {}),
  }));
  for (const t of tenants) {
    if (t.maxWaitMs < t.quietMs) fail(`tenants.${t.name}.maxWait`, new Error(`must be at least the quiet window (${raw.tenants[t.name].quiet ?? DEFAULTS.quiet})`));
    if (t.reconcile && t.reconcile.everyMs < 1000) fail(`tenants.${t.name}.reconcile.every`, new Error('must be at least 1s'));
  }

  const retry = { ...DEFAULTS.retry, ...raw.retry };
  const retryPolicy = { baseMs: duration(retry.base, 'retry.base'), maxMs: duration(retry.max, 'retry.max'), budgetMs: duration(retry.budget, 'retry.budget') };
  if (retryPolicy.baseMs < 1) fail('retry.base', new Error('must be more than 0 (the first retry waits this long)'));
  if (retryPolicy.maxMs < retryPolicy.baseMs) fail('retry.max', new Error(`must be at least retry.base (${retry.base})`));
  const leaseMs = duration(raw.lease ?? DEFAULTS.lease, 'lease');
  // Renewed every third of it: much shorter and a sync outlives its claim between two beats, which the next claim
  // takes for a write whose outcome is unknown, and syncs the contact again, without end.
  if (leaseMs < MIN_LEASE_MS) fail('lease', new Error(`must be at least 1s (a runner renews its claim every third of it), got ${raw.lease}`));
  return {
    source: source.name,
    listen,
    dataDir,
    store,
    ingestToken,
    ...(previousIngestToken === undefined ? {} : { previousIngestToken }),
    maxBodyBytes: raw.maxBodyBytes ?? DEFAULTS.maxBodyBytes,
    clientRequestsPerSecond: raw.clientRequestsPerSecond ?? DEFAULTS.clientRequestsPerSecond,
    drainMs: duration(raw.drain ?? DEFAULTS.drain, 'drain'),
    leaseMs,
    logLevel: raw.logLevel ?? DEFAULTS.logLevel,
    allowHosts: raw.allowHosts ?? [],
    plugins: raw.plugins ?? [],
    pluginDir: source.baseDir,
    retry: retryPolicy,
    tenants,
  };
}

/** The shortest lease a config may set. */
const MIN_LEASE_MS = 1000;

/** Reads and validates `crm-sync.yaml` (YAML or JSON). Relative paths in it are relative to the file. */
export function loadConfigFile(file: string, env: NodeJS.ProcessEnv = process.env): DaemonConfig {
  let text: string;
  try {
    text = readFileSync(file, 'utf8');
  } catch (err) {
    throw new InvalidConfigError(file, [{ field: '(file)', message: `cannot be read: ${(err as NodeJS.ErrnoException).code ?? String(err)}` }]);
  }
  const doc = parseDocument(text, { prettyErrors: true, uniqueKeys: true });
  if (doc.errors.length > 0) {
    throw new InvalidConfigError(file, doc.errors.map((e) => ({ field: `line ${e.linePos?.[0]?.line ?? '?'}`, message: e.message.split('\n')[0] })));
  }
  let raw: unknown;
  try {
    raw = doc.toJS({ maxAliasCount: 100 });
  } catch (err) {
    // An alias without its anchor, or aliases that would expand without end (a "billion laughs" file).
    throw new InvalidConfigError(file, [{ field: '(document)', message: (err as Error).message }]);
  }
  return resolveConfig(raw, { name: file, baseDir: dirname(resolve(file)), labels: {} }, env);
}

/** The quick start: one tenant from `crm-sync run --mapping <file> …` flags. Errors name the flags. */
export interface RunFlags {
  mapping: string;
  tenant?: string;
  baseUrl?: string;
  quiet?: string;
  maxWait?: string;
  listen?: string;
  data?: string;
  store?: string;
  allowHosts?: string[];
  plugins?: string[];
  tokenEnv?: string;
  logLevel?: string;
}

export function configFromFlags(flags: RunFlags, env: NodeJS.ProcessEnv = process.env): DaemonConfig {
  const tenant = flags.tenant ?? 'default';
  const t = `tenants.${tenant}`;
  const raw: Record<string, unknown> = {
    listen: flags.listen,
    dataDir: flags.data,
    store: flags.store,
    logLevel: flags.logLevel,
    allowHosts: flags.allowHosts,
    plugins: flags.plugins,
    ingestToken: flags.tokenEnv ? `env:${flags.tokenEnv}` : undefined,
    tenants: { [tenant]: { mapping: flags.mapping, baseUrl: flags.baseUrl, quiet: flags.quiet, maxWait: flags.maxWait } },
  };
  const defined = JSON.parse(JSON.stringify(raw)) as unknown;
  const labels: Labels = {
    listen: '--listen', dataDir: '--data', store: '--store', logLevel: '--log-level', ingestToken: '--token-env', tenants: '--tenant',
    [t]: '--tenant', [`${t}.mapping`]: '--mapping', [`${t}.baseUrl`]: '--base-url', [`${t}.quiet`]: '--quiet', [`${t}.maxWait`]: '--max-wait',
  };
  (flags.allowHosts ?? []).forEach((_, i) => { labels[`allowHosts[${i}]`] = '--allow-host'; });
  (flags.plugins ?? []).forEach((_, i) => { labels[`plugins[${i}]`] = '--plugin'; });
  // A flag given on the command line wins over the environment.
  const given: Array<[unknown, string]> = [[flags.listen, ENV_OVERRIDES.listen], [flags.data, ENV_OVERRIDES.dataDir],
    [flags.store, ENV_OVERRIDES.store], [flags.logLevel, ENV_OVERRIDES.logLevel], [flags.tokenEnv, ENV_OVERRIDES.ingestToken]];
  const envBelowFlags = { ...env };
  for (const [flag, name] of given) if (flag !== undefined) delete envBelowFlags[name];
  return resolveConfig(defined, { name: 'command-line flags', baseDir: process.cwd(), labels }, envBelowFlags);
}
