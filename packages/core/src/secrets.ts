import { readFileSync } from 'node:fs';
import { ConfigError } from './errors';

/** Resolves a secret reference (`env:NAME`, `file:/path`) to its value. Errors name the reference, never a value. */
export type SecretResolver = (ref: string) => string;

export const resolveSecretRef: SecretResolver = (ref) => {
  const m = /^(env|file):(.+)$/.exec(ref);
  if (!m) throw new ConfigError(`secret reference ${JSON.stringify(ref)} must be env:NAME or file:PATH`, 'ERR_SECRET_REF');
  const [, kind, where] = m;
  if (kind === 'env') {
    const v = process.env[where];
    if (!v) throw new ConfigError(`secret ${ref}: environment variable ${where} is not set`, 'ERR_SECRET_MISSING');
    return v;
  }
  let v: string;
  try {
    v = readFileSync(where, 'utf8').trim();
  } catch (err) {
    throw new ConfigError(`secret ${ref}: cannot read the file (${(err as NodeJS.ErrnoException).code ?? 'error'})`, 'ERR_SECRET_MISSING');
  }
  if (!v) throw new ConfigError(`secret ${ref}: the file is empty`, 'ERR_SECRET_MISSING');
  return v;
};

export const MASK = '***';

// Spelling a secret four ways costs more than the masking itself, and every request masks the same few secrets.
const spellingCache = new Map<string, string[]>();
const SPELLING_CACHE_MAX = 256;

/** Every way a request may carry the secret: raw, percent-encoded, form-encoded, JSON-escaped. */
function spellingsOf(secret: string): string[] {
  let forms = spellingCache.get(secret);
  if (!forms) {
    forms = [...new Set([secret, encodeURIComponent(secret), new URLSearchParams({ s: secret }).toString().slice(2), JSON.stringify(secret).slice(1, -1)])];
    if (spellingCache.size >= SPELLING_CACHE_MAX) spellingCache.clear();
    spellingCache.set(secret, forms);
  }
  return forms;
}

/** Replaces every spelling of each secret a request may carry (raw, percent-encoded, form-encoded) with ***. */
export function maskSecrets(text: string, secrets: readonly string[]): string {
  let out = text;
  for (const s of secrets) {
    if (!s) continue;
    for (const form of spellingsOf(s)) if (out.includes(form)) out = out.split(form).join(MASK);
  }
  return out;
}
