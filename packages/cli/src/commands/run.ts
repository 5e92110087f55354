import { configFromFlags, createLogger, errorFields, LOG_LEVELS, loadConfigFile, startDaemon, type DaemonConfig, type LogLevel } from '@crm-sync/runner';
import { listOption, stringOption, type Values } from '../args';
import { EXIT, UsageError, type Command } from '../command';
import { untilShutdown } from '../shutdown';

const QUICK_START_FLAGS = ['mapping', 'tenant', 'base-url', 'quiet', 'max-wait', 'listen', 'data', 'store', 'allow-host', 'plugin', 'token-env'] as const;

function logLevelOption(values: Values): LogLevel | undefined {
  const level = stringOption(values, 'log-level');
  if (level !== undefined && !LOG_LEVELS.includes(level as LogLevel)) throw new UsageError(`--log-level must be one of ${LOG_LEVELS.join(', ')}`);
  return level as LogLevel | undefined;
}

/** The config from --config, or a one-tenant config from the quick-start flags. */
export function daemonConfigFromArgs(values: Values): DaemonConfig {
  const configFile = stringOption(values, 'config');
  const logLevel = logLevelOption(values);
  if (configFile !== undefined) {
    const mixed = QUICK_START_FLAGS.filter((f) => values[f] !== undefined);
    if (mixed.length > 0) throw new UsageError(`--config cannot be combined with --${mixed.join(', --')}; put those settings in the config file`);
    const config = loadConfigFile(configFile);
    return logLevel ? { ...config, logLevel } : config;
  }
  const mapping = stringOption(values, 'mapping');
  if (mapping === undefined) throw new UsageError('give --config <crm-sync.yaml>, or --mapping <file> for a single tenant');
  return configFromFlags({
    mapping,
    tenant: stringOption(values, 'tenant'),
    baseUrl: stringOption(values, 'base-url'),
    quiet: stringOption(values, 'quiet'),
    maxWait: stringOption(values, 'max-wait'),
    listen: stringOption(values, 'listen'),
    data: stringOption(values, 'data'),
    store: stringOption(values, 'store'),
    allowHosts: listOption(values, 'allow-host'),
    plugins: listOption(values, 'plugin'),
    tokenEnv: stringOption(values, 'token-env'),
    logLevel,
  });
}

export const DAEMON_CONFIG_OPTIONS = {
  config: { type: 'string' }, mapping: { type: 'string' }, tenant: { type: 'string' }, 'base-url': { type: 'string' },
  quiet: { type: 'string' }, 'max-wait': { type: 'string' }, listen: { type: 'string' }, data: { type: 'string' }, store: { type: 'string' },
  'allow-host': { type: 'string', multiple: true }, plugin: { type: 'string', multiple: true }, 'token-env': { type: 'string' }, 'log-level': { type: 'string' },
} as const;

/** How run and backfill get their config: a file, or one tenant by flags. */
export const DAEMON_CONFIG_HELP = `Configuration: --config <file>, or a single tenant by flags (quick start):
  --config <file>         crm-sync.yaml (docs/running.md; schema: packages/runner/schema/config.schema.json).
  --mapping <file>        The tenant's mapping file. Required without --config.
  --tenant <name>         The tenant's name. Default: default.
  --base-url <url>        Override the mapping's baseUrl.
  --quiet <duration>      Sync once a contact has been quiet this long. Default: 5m.
  --max-wait <duration>   Sync at the latest this long after the first pending change. Default: 1h.
  --listen <host:port>    The HTTP API's address. Default: 127.0.0.1:8080.
  --data <dir>            Data directory (SQLite database crm-sync.db). Default: ./data.
  --store <url>           sqlite:<path>, or redis://host:port/db for several runners sharing one Redis
                          (docs/scaling.md). Default: sqlite:<data dir>/crm-sync.db.
  --allow-host <host>     Allow plain http / private addresses for this CRM host; repeatable.
  --plugin <module>       Load third-party adapters from this package (from the working directory); repeatable.
  --token-env <NAME>      Require Authorization: Bearer <the value of env var NAME> on /v1.
  --log-level <level>     ${LOG_LEVELS.join(' | ')}. Default: info (or CRM_SYNC_LOG_LEVEL).`;

export const run: Command = {
  name: 'run',
  summary: 'Run the daemon: the ingest API, durable debounce, and syncs to every tenant\'s CRM.',
  help: `Usage: crm-sync run --config <crm-sync.yaml> [--log-level L]
       crm-sync run --mapping <file> [options]

Starts the daemon: validates the config and compiles every tenant's mapping (any problem exits 1
with the file, field and reason, before listening), opens the store, resumes every pending
contact, and serves the HTTP API (docs/openapi.yaml). Logs are JSON lines on standard output.
SIGTERM / SIGINT: stop accepting, let in-flight syncs finish (the config's drain time, default
10s; unfinished ones are handed back and resume at the next start), close the store, exit 0.

${DAEMON_CONFIG_HELP}
  -h, --help              Show this help.

Environment (override the config; flags win over them): CRM_SYNC_LISTEN, CRM_SYNC_STORE,
CRM_SYNC_DATA_DIR, CRM_SYNC_INGEST_TOKEN (the token itself), CRM_SYNC_LOG_LEVEL,
CRM_SYNC_ALLOW_HOSTS (comma-separated).

SIGHUP reads the config and every mapping again and applies what changed in the tenants (added,
removed, changed), the ingest tokens, allowHosts, the log level and the drain time without a
restart; other settings need one (docs/running.md).

Exit status: 0 stopped by a signal after draining, 1 bad config/mapping or could not start, 2 usage error.`,
  options: DAEMON_CONFIG_OPTIONS,
  async run({ values, positionals }, io) {
    if (positionals.length > 0) throw new UsageError(`unexpected argument ${JSON.stringify(positionals[0])}`);
    const config = daemonConfigFromArgs(values);
    const logger = createLogger({ level: config.logLevel });
    const daemon = await startDaemon(config, { logger });
    // SIGHUP: read the config (and every tenant's mapping) again, and apply what changed in the tenants.
    const onHup = () => {
      let next: DaemonConfig;
      try {
        next = daemonConfigFromArgs(values);
      } catch (err) {
        logger.error({ err: errorFields(err) }, 'reload: the config does not load; nothing changed');
        return;
      }
      daemon.reload(next).catch((err: unknown) => {
        logger.error({ err: errorFields(err) }, 'reload failed; nothing changed');
      });
    };
    process.on('SIGHUP', onHup);
    try {
      await untilShutdown(io.signal);
    } finally {
      process.off('SIGHUP', onHup);
    }
    await daemon.stop();
    logger.flush();
    return EXIT.ok;
  },
};
