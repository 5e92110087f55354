import { readFileSync } from 'node:fs';
import { resolve } from 'node:path';
import { ConfigError, GotHttpClient, MappingError, compileMapping, resolveSecretRef, type ContactParseOptions } from '@crm-sync/core';
import type { TenantSettings } from '../api';
import { loadPlugins, registerBuiltinAdapters } from '../builtins';
import type { DaemonConfig, TenantConfig } from './types';

type CountryCode = NonNullable<ContactParseOptions['defaultCountry']>;

function compileTenant(t: TenantConfig, network: GotHttpClient): TenantSettings {
  let text: string;
  try {
    text = readFileSync(t.mappingFile, 'utf8');
  } catch (err) {
    throw new MappingError([{ field: '(file)', message: `cannot be read: ${(err as NodeJS.ErrnoException).code ?? String(err)} (the file tenants.${t.name}.mapping names)` }],
      { file: t.mappingFile, code: 'ERR_MAPPING_READ', context: { tenant: t.name } });
  }
  const mapping = compileMapping(text, { file: t.mappingFile });
  const where = `tenant ${t.name} (${t.mappingFile})`;
  // Fail at start-up, not at the first sync hours later: the secret must resolve and the CRM must be reachable by policy.
  // Every secret reference the mapping names, by field: each must be allowed for the tenant, and resolve.
  const refs = mapping.auth?.references?.(mapping.authOptions) ?? {};
  const named: Array<[string, string]> = [
    ...(mapping.definition.auth.secret ? [['auth.secret', mapping.definition.auth.secret] as [string, string]] : []),
    ...Object.entries(mapping.definition.secrets ?? {}).map(([name, ref]): [string, string] => [`secrets.${name}`, ref]),
    ...Object.entries(refs.secrets ?? {}),
  ];
  for (const [field, ref] of named) {
    // A file is matched by the path it names once `..` and `.` are resolved: file:/run/secrets/acme/../other is not
    // under /run/secrets/acme/.
    const compared = ref.startsWith('file:') ? `file:${resolve(ref.slice('file:'.length))}` : ref;
    if (t.allowSecrets && !t.allowSecrets.some((pattern) => referenceMatches(pattern, compared))) {
      throw new ConfigError(`${where}: ${field}: ${ref} is not among the references tenants.${t.name}.allowSecrets allows (${t.allowSecrets.join(', ')})`, 'ERR_SECRET_NOT_ALLOWED');
    }
    try { resolveSecretRef(ref); } catch (err) { throw new ConfigError(`${where}: ${field}: ${(err as Error).message}`, (err as ConfigError).code); }
  }
  const baseUrl = t.baseUrl ?? mapping.definition.baseUrl;
  const checkUrl = (field: string, url: string) => {
    try {
      network.checkUrl(new URL(url));
    } catch (err) {
      throw new ConfigError(`${where}: ${field}: ${(err as Error).message} (add the host to allowHosts / --allow-host to allow it)`, 'ERR_URL_FORBIDDEN');
    }
  };
  checkUrl(t.baseUrl ? `tenants.${t.name}.baseUrl` : 'baseUrl', baseUrl);
  // What the auth adapter's options point at (a token endpoint): checked now too. Its secrets were, above.
  for (const [field, url] of Object.entries(refs.urls ?? {})) checkUrl(field, url);
  if (t.reconcile && !mapping.endpoints.fetch) {
    throw new ConfigError(`${where}: tenants.${t.name}.reconcile: the mapping has no fetch endpoint, so its leads cannot be read back`, 'ERR_CONFIG_INVALID');
  }
  return {
    name: t.name,
    mapping,
    baseUrl: t.baseUrl,
    quietMs: t.quietMs,
    maxWaitMs: t.maxWaitMs,
    concurrency: t.concurrency,
    requestsPerSecond: t.requestsPerSecond,
    defaultCountry: t.defaultCountry as CountryCode | undefined,
  };
}

/** Whether a secret reference matches an allowSecrets pattern: `*` stands for any characters, the rest is literal. */
export function referenceMatches(pattern: string, ref: string): boolean {
  const source = pattern.split('*').map((part) => part.replace(/[.+?^${}()|[\]\\/-]/g, '\\$&')).join('.*');
  return new RegExp(`^${source}$`, 's').test(ref);
}

/**
 * Registers the adapters (built-in and the config's plug-ins) and compiles every tenant's mapping. Throws the first
 * problem with the tenant, file and field named: a daemon with a broken tenant does not start.
 */
export function prepareTenants(config: DaemonConfig): TenantSettings[] {
  registerBuiltinAdapters();
  config.plugins.forEach((name, i) => {
    try {
      loadPlugins([name], config.pluginDir);
    } catch (err) {
      throw new ConfigError(`${config.source}: plugins[${i}]: cannot load ${JSON.stringify(name)}: ${(err as Error).message.split('\n')[0]}`, 'ERR_PLUGIN_LOAD');
    }
  });
  const network = new GotHttpClient({ allowHosts: config.allowHosts });
  return config.tenants.map((t) => compileTenant(t, network));
}
