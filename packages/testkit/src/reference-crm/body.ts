import type { IncomingMessage } from 'node:http';

export type ParsedBody = { ok: true; value: Record<string, unknown> } | { ok: false; reason: string; raw: string };

// Keys that would reach Object.prototype through `obj[key] = v`.
export const UNSAFE_KEYS = new Set(['__proto__', 'constructor', 'prototype']);

// Past maxBodyBytes we keep draining (so the client can read its 413 instead of
// seeing a reset mid-upload), but only up to here.
const DRAIN_LIMIT = 64 * 1024 * 1024;

export interface RawBody {
  buf: Buffer;
  tooLarge: boolean;
}

export function readBody(req: IncomingMessage, maxBytes: number): Promise<RawBody> {
  return new Promise((resolve, reject) => {
    const chunks: Buffer[] = [];
    let size = 0;
    let tooLarge = false;
    let ended = false;
    req.on('data', (chunk: Buffer) => {
      size += chunk.length;
      if (size > maxBytes) {
        tooLarge = true;
        chunks.length = 0;
        if (size > DRAIN_LIMIT) req.socket.destroy();
        return;
      }
      chunks.push(chunk);
    });
    req.on('end', () => {
      ended = true;
      resolve({ buf: Buffer.concat(chunks), tooLarge });
    });
    req.on('error', reject);
    req.on('close', () => {
      if (!ended) reject(new Error('request aborted'));
    });
  });
}

/** JSON unless the content type says form; an empty body is an empty object. */
export function parseBody(buf: Buffer, contentType: string | undefined): ParsedBody {
  const raw = buf.toString('utf8');
  const type = (contentType ?? '').split(';')[0]!.trim().toLowerCase();
  if (type === 'application/x-www-form-urlencoded') return { ok: true, value: parseForm(raw) };
  if (raw.trim() === '') return { ok: true, value: {} };
  let value: unknown;
  try {
    value = JSON.parse(raw);
  } catch (err) {
    return { ok: false, reason: `Invalid JSON body: ${(err as Error).message}`, raw };
  }
  if (!isPlainObject(value)) return { ok: false, reason: 'Body must be a JSON object', raw };
  return { ok: true, value };
}

/**
 * Form decoding with bracket nesting as PHP/Rails/qs do it, because that is how form-speaking
 * CRMs receive custom fields: `custom_fields[crm_x]=v` → { custom_fields: { crm_x: 'v' } },
 * `tags[]=a&tags[]=b` → { tags: ['a', 'b'] }. A repeated plain key keeps the last value.
 */
export function parseForm(text: string): Record<string, unknown> {
  const out: Record<string, unknown> = {};
  for (const [key, value] of new URLSearchParams(text)) {
    const path = splitKey(key);
    if (path.some((seg) => UNSAFE_KEYS.has(seg))) continue;
    assign(out, path, value);
  }
  return out;
}

function splitKey(key: string): string[] {
  const m = /^([^[\]]+)((?:\[[^[\]]*\])+)$/.exec(key);
  if (!m) return [key];
  const segs = [m[1]!, ...[...m[2]!.matchAll(/\[([^[\]]*)\]/g)].map((x) => x[1]!)];
  // '[]' only means "append" at the end; elsewhere the key is taken literally.
  return segs.slice(0, -1).includes('') ? [key] : segs;
}

function assign(target: Record<string, unknown>, path: string[], value: string): void {
  let node = target;
  for (let i = 0; i < path.length - 1; i++) {
    const seg = path[i]!;
    const next = path[i + 1]!;
    if (next === '') {
      const arr = Array.isArray(node[seg]) ? (node[seg] as unknown[]) : [];
      arr.push(value);
      node[seg] = arr;
      return;
    }
    if (!isPlainObject(node[seg])) node[seg] = {};
    node = node[seg] as Record<string, unknown>;
  }
  node[path[path.length - 1]!] = value;
}

export function isPlainObject(v: unknown): v is Record<string, unknown> {
  return typeof v === 'object' && v !== null && !Array.isArray(v);
}
