import { createHmac } from 'node:crypto';
import type { AuthAdapter, SignableRequest } from '@crm-sync/core';

type Part = 'timestamp' | 'method' | 'path' | 'body';

interface HmacOptions {
  header?: string;
  algorithm?: 'sha256' | 'sha512';
  encoding?: 'hex' | 'base64';
  prefix?: string;
  timestampHeader?: string;
  signed?: Part[];
  separator?: string;
}

const HEADER_NAME = '^[A-Za-z0-9!#$%&\'*+.^_`|~-]+$';

/** The text signed: the chosen parts of the request, in order, joined by the separator. */
export function signedText(request: SignableRequest, options: HmacOptions, timestamp: string): string {
  const parts = options.signed ?? (options.timestampHeader ? ['timestamp', 'body'] : ['body']);
  const value: Record<Part, string> = {
    timestamp,
    method: request.method.toUpperCase(),
    path: request.url.pathname + request.url.search,
    body: request.body ?? '',
  };
  return parts.map((p) => value[p]).join(options.separator ?? '.');
}

/**
 * An HMAC of each request, keyed with the mapping's secret, in a header (`X-Signature: <hex>` by default): the
 * secret itself is never sent. What is signed is chosen from the request's Unix timestamp (sent in
 * `timestampHeader`), method, path with query, and exact body text, joined by `separator`; e.g. the common
 * `X-Signature: sha256=hex(HMAC-SHA256(secret, "<timestamp>.<body>"))` is `{ prefix: "sha256=", timestampHeader:
 * "X-Timestamp" }`. Signing needs the encoded body, so it happens in `sign`, after encoding; `apply` adds nothing.
 */
export const adapter: AuthAdapter = {
  kind: 'auth',
  name: 'hmac',
  optionsSchema: {
    type: 'object',
    additionalProperties: false,
    properties: {
      header: { type: 'string', pattern: HEADER_NAME, patternMessage: 'must be an HTTP header name: letters, digits and !#$%&\'*+.^_`|~-', description: 'The signature\'s header. Default: X-Signature.' },
      algorithm: { type: 'string', enum: ['sha256', 'sha512'], description: 'Default: sha256.' },
      encoding: { type: 'string', enum: ['hex', 'base64'], description: 'How the signature is written. Default: hex.' },
      prefix: { type: 'string', pattern: '^[A-Za-z0-9._~+/=:, -]*$', description: 'Before the signature, e.g. "sha256=". Default: none.' },
      timestampHeader: { type: 'string', pattern: HEADER_NAME, patternMessage: 'must be an HTTP header name: letters, digits and !#$%&\'*+.^_`|~-', description: 'Sends the Unix time (seconds) in this header, for a signature that cannot be replayed later.' },
      signed: {
        type: 'array', minItems: 1, uniqueItems: true, items: { type: 'string', enum: ['timestamp', 'method', 'path', 'body'] },
        description: 'What is signed, in order. Default: [timestamp, body] with timestampHeader, else [body].',
      },
      separator: { type: 'string', description: 'Between the signed parts. Default: ".".' },
    },
    // A signed timestamp has to reach the CRM.
    if: { required: ['signed'], properties: { signed: { contains: { const: 'timestamp' } } } },
    then: { required: ['timestampHeader'] },
  },
  apply() {
    // Nothing before the body is encoded: see sign.
  },
  sign(request, secret, raw, ctx) {
    const options = raw as HmacOptions;
    const timestamp = String(Math.floor(ctx.now() / 1000));
    if (options.timestampHeader) request.headers[options.timestampHeader] = timestamp;
    const mac = createHmac(options.algorithm ?? 'sha256', secret).update(signedText(request, options, timestamp), 'utf8').digest(options.encoding ?? 'hex');
    request.headers[options.header ?? 'X-Signature'] = `${options.prefix ?? ''}${mac}`;
  },
};

export default adapter;
