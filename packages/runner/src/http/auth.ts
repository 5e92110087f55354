import { createHash, timingSafeEqual } from 'node:crypto';

const digest = (s: string) => createHash('sha256').update(s).digest();

/**
 * True when the Authorization header carries `Bearer <token>`. The comparison takes the same time wherever the first
 * difference is (hashing first makes the lengths equal too), so the token cannot be guessed byte by byte.
 */
export function bearerMatches(header: string | undefined, token: string): boolean {
  const m = /^Bearer\s+(.+)$/i.exec(header ?? '');
  return timingSafeEqual(digest(m ? m[1].trim() : ''), digest(token)) && m !== null;
}
