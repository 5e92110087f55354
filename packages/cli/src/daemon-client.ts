import { DaemonClient, DEFAULT_DAEMON_URL } from '@crm-sync/runner';
import { stringOption, type Values } from './args';
import { UsageError } from './command';

/** The commands that talk to a running daemon (ingest, status, dead-letters) share these options. */
export const DAEMON_CLIENT_OPTIONS = { url: { type: 'string' }, 'token-env': { type: 'string' } } as const;

export const DAEMON_CLIENT_HELP = `  --url <url>             The daemon's API. Default: $CRM_SYNC_URL, else ${DEFAULT_DAEMON_URL}.
  --token-env <NAME>      Send Authorization: Bearer <value of env var NAME>.
                          Default: CRM_SYNC_INGEST_TOKEN, when it is set.`;

export function daemonClientFromArgs(values: Values, env: NodeJS.ProcessEnv = process.env): DaemonClient {
  const url = stringOption(values, 'url') ?? env.CRM_SYNC_URL ?? DEFAULT_DAEMON_URL;
  if (!/^https?:\/\/[^/]/.test(url)) throw new UsageError(`--url must be an http(s) URL, got ${JSON.stringify(url)}`);
  const tokenEnv = stringOption(values, 'token-env');
  const token = env[tokenEnv ?? 'CRM_SYNC_INGEST_TOKEN'];
  if (tokenEnv !== undefined && !token) throw new UsageError(`--token-env ${tokenEnv}: the environment variable is not set`);
  return new DaemonClient(url, token || undefined);
}
