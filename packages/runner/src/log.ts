import { types } from 'node:util';
import pino, { type DestinationStream, type Logger } from 'pino';

export type { Logger } from 'pino';
export type LogLevel = 'trace' | 'debug' | 'info' | 'warn' | 'error' | 'fatal' | 'silent';
export const LOG_LEVELS: readonly LogLevel[] = ['trace', 'debug', 'info', 'warn', 'error', 'fatal', 'silent'];

/**
 * Anything that may carry a credential, wherever it is nested. Secrets are kept out of log calls in the first place
 * (the engine masks URLs and reasons); this is the net under that rule.
 */
export const REDACT_PATHS = [
  'authorization', '*.authorization', '*.*.authorization',
  'headers.authorization', '*.headers.authorization', '*.headers["auth-key"]', '*.headers.cookie',
  'token', '*.token', 'ingestToken', '*.ingestToken', 'previousIngestToken', '*.previousIngestToken',
  'secret', '*.secret', '*.*.secret', 'password', '*.password', 'apiKey', '*.apiKey',
];

/** An error as log lines carry it: its code (when it has one) and message, never its stack or other fields. */
export function errorFields(err: unknown): { code?: string; message: string } {
  const e = err as { code?: unknown; message?: unknown } | null | undefined;
  return { code: typeof e?.code === 'string' ? e.code : undefined, message: typeof e?.message === 'string' ? e.message : String(err) };
}

/** JSON lines on stdout (or `destination`), secrets redacted. Child loggers add tenant / contact / step. */
export function createLogger(opts: { level?: LogLevel; destination?: DestinationStream } = {}): Logger {
  return pino({
    level: opts.level ?? 'info',
    base: { service: 'crm-sync' },
    redact: { paths: REDACT_PATHS, censor: '***' },
    // An Error gets pino's type, message and stack; errorFields' {code, message} is logged as it is (pino's own
    // serializer took it for an error and added `"type":"Object","stack":""`).
    serializers: { err: (value: unknown) => (value instanceof Error || types.isNativeError(value) ? pino.stdSerializers.err(value as Error) : value) },
    timestamp: pino.stdTimeFunctions.isoTime,
    formatters: { level: (label) => ({ level: label }) },
  }, opts.destination ?? pino.destination({ dest: 1, sync: false }));
}
