import type { IncomingMessage } from 'node:http';
import { HttpError } from './errors';

/** Reads the whole body, refusing (413) as soon as it passes `limit` bytes instead of buffering it all. */
export function readBody(req: IncomingMessage, limit: number): Promise<Buffer> {
  const declared = Number(req.headers['content-length']);
  if (Number.isFinite(declared) && declared > limit) {
    req.resume();
    return Promise.reject(tooLarge(limit));
  }
  return new Promise((resolve, reject) => {
    const chunks: Buffer[] = [];
    let size = 0;
    req.on('data', (chunk: Buffer) => {
      size += chunk.length;
      if (size > limit) {
        req.removeAllListeners('data');
        req.resume();
        reject(tooLarge(limit));
        return;
      }
      chunks.push(chunk);
    });
    req.on('end', () => resolve(Buffer.concat(chunks)));
    req.on('error', reject);
  });
}

/**
 * Refuses (415) a compressed body: only plain (identity) bodies are read. Read as they are, gzip bytes would be
 * refused as "not valid UTF-8", which says nothing of the cause; a body that only claims an encoding is refused too.
 */
export function refuseContentEncoding(req: IncomingMessage): void {
  const encoding = (req.headers['content-encoding'] ?? '').trim().toLowerCase();
  if (encoding === '' || encoding === 'identity') return;
  req.resume();
  throw new HttpError(415, 'ERR_UNSUPPORTED_ENCODING', `Content-Encoding ${JSON.stringify(encoding.slice(0, 40))} is not supported: send the body uncompressed`);
}

function tooLarge(limit: number): HttpError {
  return new HttpError(413, 'ERR_BODY_TOO_LARGE', `the body is larger than ${limit} bytes; send the events in smaller batches`);
}

const utf8 = new TextDecoder('utf-8', { fatal: true });

/** The body as text. Invalid UTF-8 is refused rather than turned into U+FFFD: a mangled name must not reach a CRM. */
function decodeUtf8(body: Buffer): string {
  try {
    return utf8.decode(body);
  } catch {
    throw new HttpError(400, 'ERR_BAD_ENCODING', 'the body is not valid UTF-8');
  }
}

function isNdjson(contentType: string | undefined): boolean {
  return /^application\/(x-ndjson|jsonl|x-jsonlines)\b/i.test(contentType ?? '');
}

function syntaxMessage(err: unknown): string {
  return (err as Error).message.replace(/^JSON\.parse: /, '');
}

/**
 * The events in a request body: one event object, a JSON array of events, or NDJSON (one event per line, blank lines
 * skipped). Unparseable input is refused whole (400), naming the NDJSON line, so a client never half-sends a batch.
 */
export function parseEventBody(body: Buffer, contentType: string | undefined): unknown[] {
  const text = decodeUtf8(body);
  if (isNdjson(contentType)) {
    const events: unknown[] = [];
    text.split('\n').forEach((line, i) => {
      if (line.trim() === '') return;
      try {
        events.push(JSON.parse(line));
      } catch (err) {
        throw new HttpError(400, 'ERR_BAD_JSON', `line ${i + 1}: ${syntaxMessage(err)}`);
      }
    });
    if (events.length === 0) throw new HttpError(400, 'ERR_NO_EVENTS', 'the body has no events');
    return events;
  }
  let parsed: unknown;
  try {
    parsed = JSON.parse(text);
  } catch (err) {
    throw new HttpError(400, 'ERR_BAD_JSON', `the body is not JSON: ${syntaxMessage(err)} (send NDJSON as application/x-ndjson)`);
  }
  if (Array.isArray(parsed)) {
    if (parsed.length === 0) throw new HttpError(400, 'ERR_NO_EVENTS', 'the array has no events');
    return parsed;
  }
  if (typeof parsed === 'object' && parsed !== null) return [parsed];
  throw new HttpError(400, 'ERR_NOT_EVENTS', 'the body must be an event object, an array of events, or NDJSON');
}

export async function readJson(req: IncomingMessage, limit: number): Promise<unknown> {
  refuseContentEncoding(req);
  const body = await readBody(req, limit);
  if (body.length === 0) return {};
  const text = decodeUtf8(body);
  try {
    return JSON.parse(text);
  } catch (err) {
    throw new HttpError(400, 'ERR_BAD_JSON', `the body is not JSON: ${syntaxMessage(err)}`);
  }
}
