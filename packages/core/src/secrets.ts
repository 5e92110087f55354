import { readFileSync, statSync, type Stats } from 'node:fs';
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
  return readSecretFile(ref, where);
};

/**
 * A `file:` secret as last read, with what the file looked like then. Every sync resolves its secret, and a stat is
 * far cheaper than reading the file, so the file is read again only when it changed (another inode, as a rename or a
 * Kubernetes secret's symlink swap makes, or another size, mtime or ctime): a rotated secret still counts at once.
 */
interface FileSecret { value: string; ino: number; size: number; mtimeMs: number; ctimeMs: number }
const fileSecrets = new Map<string, FileSecret>();
const FILE_SECRETS_MAX = 256;
const sameFile = (a: FileSecret, st: Stats) => a.ino === st.ino && a.size === st.size && a.mtimeMs === st.mtimeMs && a.ctimeMs === st.ctimeMs;

function readSecretFile(ref: string, path: string): string {
  const unreadable = (err: unknown) => new ConfigError(`secret ${ref}: cannot read the file (${(err as NodeJS.ErrnoException).code ?? 'error'})`, 'ERR_SECRET_MISSING');
  let st: Stats;
  try {
    st = statSync(path);
  } catch (err) {
    fileSecrets.delete(path);
    throw unreadable(err);
  }
  const known = fileSecrets.get(path);
  if (known && sameFile(known, st)) return known.value;
  let v: string;
  try {
    v = readFileSync(path, 'utf8').trim();
  } catch (err) {
    fileSecrets.delete(path);
    throw unreadable(err);
  }
  if (!v) {
    fileSecrets.delete(path);
    throw new ConfigError(`secret ${ref}: the file is empty`, 'ERR_SECRET_MISSING');
  }
  if (fileSecrets.size >= FILE_SECRETS_MAX && !known) fileSecrets.clear();
  // The stat taken before the read: a write between the two makes the next call read again, never keep a stale value.
  fileSecrets.set(path, { value: v, ino: st.ino, size: st.size, mtimeMs: st.mtimeMs, ctimeMs: st.ctimeMs });
  return v;
}

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
      Buffer.from(secret).toString('base64'), Buffer.from(secret).toString('base64url')])].sort((a, b) => b.length - a.length);
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
  // Longest spellings first: a secret's own spelling inside another's (its base64 at the start of Basic auth's
  // base64 of "secret:password") must not cut the longer one before it is matched whole.
  const all = secrets.filter((s) => s).map(spellingsOf);
  // One secret's spellings are sorted already (spellingsOf); several are merged and sorted again.
  const forms = all.length === 1 ? all[0]!.forms : all.flatMap((s) => s.forms).sort((a, b) => b.length - a.length);
  for (const form of forms) if (out.includes(form)) out = out.split(form).join(MASK);
  if (out.includes('\\')) for (const { escaped } of all) if (escaped) out = out.replace(escaped, MASK);
  return out;
}
