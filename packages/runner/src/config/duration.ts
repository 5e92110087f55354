import { ConfigError } from '@crm-sync/core';

const UNIT_MS = { ms: 1, s: 1000, m: 60_000, h: 3_600_000, d: 86_400_000 } as const;
const DURATION = /^\s*(\d+(?:\.\d+)?)\s*(ms|s|m|h|d)\s*$/;

/** `300ms`, `5m`, `1h` → milliseconds. `where` names the field or flag the text came from. */
export function parseDuration(text: string, where: string): number {
  const m = DURATION.exec(text);
  if (!m) throw new ConfigError(`${where}: ${JSON.stringify(text)} is not a duration such as 300ms, 5m or 1h`, 'ERR_CONFIG_INVALID');
  return Math.round(Number(m[1]) * UNIT_MS[m[2] as keyof typeof UNIT_MS]);
}

/** The inverse, for logs and help texts: 300000 → `5m`. */
export function formatDuration(ms: number): string {
  for (const [unit, size] of [['d', UNIT_MS.d], ['h', UNIT_MS.h], ['m', UNIT_MS.m], ['s', UNIT_MS.s]] as const) {
    if (ms >= size && ms % size === 0) return `${ms / size}${unit}`;
  }
  return `${ms}ms`;
}
