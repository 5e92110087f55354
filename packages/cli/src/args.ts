import { isIP } from 'node:net';
import { UsageError, type parseCommandArgs } from './command';

export type Values = ReturnType<typeof parseCommandArgs>['values'];

/** The value of a string option, or undefined when absent. An empty value is a usage error. */
export function stringOption(values: Values, name: string): string | undefined {
  const v = values[name];
  if (v === undefined) return undefined;
  if (typeof v !== 'string' || v === '') throw new UsageError(`--${name} needs a value`);
  return v;
}

export function requiredOption(values: Values, name: string): string {
  const v = stringOption(values, name);
  if (v === undefined) throw new UsageError(`--${name} is required`);
  return v;
}

/** A number option above 0 and at most `max` (a whole number when `integer`), or undefined when absent. */
export function positiveNumberOption(values: Values, name: string, opts: { integer: boolean; max: number }): number | undefined {
  const raw = stringOption(values, name);
  if (raw === undefined) return undefined;
  const n = Number(raw);
  if (!Number.isFinite(n) || n <= 0 || n > opts.max || (opts.integer && !Number.isInteger(n))) {
    throw new UsageError(`--${name} must be a ${opts.integer ? 'whole number' : 'number'} above 0, at most ${opts.max}, got ${JSON.stringify(raw)}`);
  }
  return n;
}

/** A repeatable string option (declared with `multiple: true`). */
export function listOption(values: Values, name: string): string[] {
  const v = values[name];
  const list = v === undefined ? [] : Array.isArray(v) ? v : [v];
  return list.map((item) => {
    if (typeof item !== 'string' || item === '') throw new UsageError(`--${name} needs a value`);
    return item;
  });
}

/** Exactly one positional argument, named `what` in the message when it is missing or repeated. */
export function onePositional(positionals: string[], what: string): string {
  if (positionals.length === 0) throw new UsageError(`missing ${what}`);
  if (positionals.length > 1) throw new UsageError(`expected one ${what}, got ${positionals.length}: ${positionals.join(' ')}`);
  return positionals[0]!;
}

/** `--base-url`: an absolute http(s) URL, or undefined when absent. */
export function baseUrlOption(values: Values): URL | undefined {
  const raw = stringOption(values, 'base-url');
  if (raw === undefined) return undefined;
  let url: URL;
  try {
    url = new URL(raw);
  } catch {
    throw new UsageError(`--base-url ${JSON.stringify(raw)} is not an absolute URL (e.g. https://crm.example.com)`);
  }
  if (url.protocol !== 'http:' && url.protocol !== 'https:') throw new UsageError(`--base-url must be http or https, got ${url.protocol}`);
  return url;
}

/** A TCP port 0..65535 (0: any free port). */
export function portOption(values: Values, name: string, fallback: number): number {
  const raw = stringOption(values, name);
  if (raw === undefined) return fallback;
  const port = Number(raw);
  if (!/^\d+$/.test(raw) || port > 65535) throw new UsageError(`--${name} must be a port number 0..65535, got ${JSON.stringify(raw)}`);
  return port;
}

/** Hosts that reach this machine only (127.0.0.0/8, ::1, localhost). */
export function isLoopbackHost(hostname: string): boolean {
  const host = hostname.replace(/^\[|\]$/g, '').toLowerCase();
  if (host === 'localhost' || host.endsWith('.localhost')) return true;
  if (isIP(host) === 4) return host.startsWith('127.');
  return host === '::1' || /^::ffff:127\./.test(host);
}

/** `--allow-host` values, plus the `--base-url` host when it is loopback: pointing a command at a local CRM is the intent. */
export function allowedHosts(baseUrl: URL | undefined, allowHost: readonly string[]): string[] {
  return baseUrl && isLoopbackHost(baseUrl.hostname) ? [...allowHost, baseUrl.hostname.replace(/^\[|\]$/g, '').toLowerCase()] : [...allowHost];
}
