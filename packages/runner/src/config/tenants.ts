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
    throw new MappingError([{ field: '(file)', message: `cannot be read: ${(err as NodeJS.ErrnoException).code ?? String(err)}` }],
      { file: t.mappingFile, code: 'ERR_MAPPING_READ', context: { tenant: t.name } });
  }
  const mapping = compileMapping(text, { file: t.mappingFile });
  const where = `tenant ${t.name} (${t.mappingFile})`;
  // Fail at start-up, not at the first sync hours later: the secret must resolve and the CRM must be reachable by policy.
  const secretRef = mapping.definition.auth.secret;
  if (secretRef) {
    try { resolveSecretRef(secretRef); } catch (err) { throw new ConfigError(`${where}: auth.secret: ${(err as Error).message}`, (err as ConfigError).code); }
  }
  const baseUrl = t.baseUrl ?? mapping.definition.baseUrl;
  try {
    network.checkUrl(new URL(baseUrl));
  } catch (err) {
    const field = t.baseUrl ? `tenants.${t.name}.baseUrl` : 'baseUrl';
    throw new ConfigError(`${where}: ${field}: ${(err as Error).message} (add the host to allowHosts / --allow-host to allow it)`, 'ERR_URL_FORBIDDEN');
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
