import { DaemonClient, DEFAULT_DAEMON_URL, loadConfigFile } from '@crm-sync/runner';
import { stringOption, type Values } from './args';
import { UsageError } from './command';

/** The commands that talk to a running daemon (ingest, status, dead-letters) share these options. */
export const DAEMON_CLIENT_OPTIONS = { url: { type: 'string' }, 'token-env': { type: 'string' }, config: { type: 'string' } } as const;

export const DAEMON_CLIENT_HELP = `  --url <url>             The daemon's API. Default: the --config file's listen address, else
                          $CRM_SYNC_URL, else ${DEFAULT_DAEMON_URL}.
  --token-env <NAME>      Send Authorization: Bearer <value of env var NAME>.
                          Default: the --config file's ingestToken, else CRM_SYNC_INGEST_TOKEN when set.
  --config <file>         The daemon's crm-sync.yaml: its listen address and ingest token (with the
                          environment's overrides, as the daemon reads them).`;

export function daemonClientFromArgs(values: Values, env: NodeJS.ProcessEnv = process.env): DaemonClient {
  const configFile = stringOption(values, 'config');
  const config = configFile === undefined ? undefined : loadConfigFile(configFile, env);
  const url = stringOption(values, 'url') ?? (config && listenUrl(config.listen)) ?? env.CRM_SYNC_URL ?? DEFAULT_DAEMON_URL;
  if (!/^https?:\/\/[^/]/.test(url)) throw new UsageError(`--url must be an http(s) URL, got ${JSON.stringify(url)}`);
  const tokenEnv = stringOption(values, 'token-env');
  const token = tokenEnv !== undefined ? env[tokenEnv] : config?.ingestToken ?? env.CRM_SYNC_INGEST_TOKEN;
  if (tokenEnv !== undefined && !token) throw new UsageError(`--token-env ${tokenEnv}: the environment variable is not set`);
  return new DaemonClient(url, token || undefined);
}

/** The URL a daemon listening there is reached at from this machine: every address (0.0.0.0, ::) by loopback. */
function listenUrl(listen: { host: string; port: number }): string {
  const { host, port } = listen;
  if (['0.0.0.0', '::', ''].includes(host)) return `http://127.0.0.1:${port}`;
  return host.includes(':') ? `http://[${host}]:${port}` : `http://${host}:${port}`;
}
