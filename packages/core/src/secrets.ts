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

// Spelling a secret every way costs more than the masking itself, and every request masks the same few secrets.
const spellingCache = new Map<string, Spellings>();
const SPELLING_CACHE_MAX = 256;

interface Spellings {
  forms: string[];
  /** The secret with any run of backslashes before its punctuation: JSON-escaped once, twice (an echo inside a JSON string), or in the \/ style. */
  escaped: RegExp | undefined;
}

/** Every way a request (or a CRM echoing it) may carry the secret: raw, percent-encoded, form-encoded, base64, escaped. */
function spellingsOf(secret: string): Spellings {
  let spellings = spellingCache.get(secret);
  if (!spellings) {
    const forms = [...new Set([secret, encodeURIComponent(secret), new URLSearchParams({ s: secret }).toString().slice(2), JSON.stringify(secret).slice(1, -1),
      Buffer.from(secret).toString('base64'), Buffer.from(secret).toString('base64url')])];
    const punctuated = /[^\p{L}\p{N}]/u.test(secret);
    const pattern = [...secret].map((c) => (/[\p{L}\p{N}]/u.test(c) ? c : `\\\\*${c.replace(/[\\^$.*+?()[\]{}|/]/g, '\\$&')}`)).join('');
    spellings = { forms, escaped: punctuated ? new RegExp(pattern, 'g') : undefined };
    if (spellingCache.size >= SPELLING_CACHE_MAX) spellingCache.clear();
    spellingCache.set(secret, spellings);
  }
  return spellings;
}

/** Replaces every spelling of each secret a request may carry (raw, percent-encoded, form-encoded, escaped) with ***. */
export function maskSecrets(text: string, secrets: readonly string[]): string {
  let out = text;
  for (const s of secrets) {
    if (!s) continue;
    const { forms, escaped } = spellingsOf(s);
    for (const form of forms) if (out.includes(form)) out = out.split(form).join(MASK);
    if (escaped && out.includes('\\')) out = out.replace(escaped, MASK);
  }
  return out;
}
