import zlib from 'node:zlib';
import { PermanentError, RetryableError } from '../errors';

/** What the client asks for; each is decoded below with the same output cap. */
export const ACCEPT_ENCODING = 'gzip, deflate, br';

/**
 * The body with its Content-Encoding undone, never longer than `maxBytes`. A compressed answer is capped on what it
 * decompresses to, not on what travelled: 50 KB of gzip can hold 50 MB of zeros.
 */
export function decodeBody(body: Buffer, contentEncoding: string | undefined, maxBytes: number): Buffer {
  const encoding = (contentEncoding ?? '').trim().toLowerCase();
  if (encoding === '' || encoding === 'identity' || body.length === 0) return body;
  const cap = { maxOutputLength: maxBytes + 1 };
  let out: Buffer;
  try {
    if (encoding === 'gzip' || encoding === 'x-gzip') out = zlib.gunzipSync(body, cap);
    else if (encoding === 'br') out = zlib.brotliDecompressSync(body, cap);
    // Servers disagree on whether "deflate" means zlib-wrapped or raw deflate.
    else if (encoding === 'deflate') out = body[0] !== undefined && (body[0] & 0x0f) === 8 ? zlib.inflateSync(body, cap) : zlib.inflateRawSync(body, cap);
    else return body;
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code === 'ERR_BUFFER_TOO_LARGE') throw tooLarge(maxBytes);
    throw new RetryableError('ERR_NETWORK', `the ${encoding}-encoded answer could not be decoded (${(err as NodeJS.ErrnoException).code ?? 'corrupt'})`, { cause: err });
  }
  if (out.length > maxBytes) throw tooLarge(maxBytes);
  return out;
}

export function tooLarge(maxBytes: number): PermanentError {
  return new PermanentError('ERR_RESPONSE_TOO_LARGE', `the answer was larger than ${maxBytes} bytes`);
}
