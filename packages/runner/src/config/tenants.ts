import { readFileSync } from 'node:fs';
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
  const secretRef = mapping.definition.auth.secret;
  if (secretRef) {
    try { resolveSecretRef(secretRef); } catch (err) { throw new ConfigError(`${where}: auth.secret: ${(err as Error).message}`, (err as ConfigError).code); }
  }
  for (const [name, ref] of Object.entries(mapping.definition.secrets ?? {})) {
    try { resolveSecretRef(ref); } catch (err) { throw new ConfigError(`${where}: secrets.${name}: ${(err as Error).message}`, (err as ConfigError).code); }
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
  // What the auth adapter's options point at (an OAuth client secret, a token endpoint): checked now too.
  const refs = mapping.auth?.references?.(mapping.authOptions) ?? {};
  for (const [field, ref] of Object.entries(refs.secrets ?? {})) {
    try { resolveSecretRef(ref); } catch (err) { throw new ConfigError(`${where}: ${field}: ${(err as Error).message}`, (err as ConfigError).code); }
  }
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
