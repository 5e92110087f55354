import { createHmac } from 'node:crypto';
import { compileDefinition, MappingError, registerAdapter, type MappingDefinition, type SignableRequest } from '@crm-sync/core';
import { adapter, signedText } from '..';

const SECRET = 'key';
const NOW = Date.parse('2024-05-06T09:14:03.500Z');
const clock = { now: () => NOW };

function request(body: string | undefined, method = 'POST'): SignableRequest {
  return { method, url: new URL('https://crm.example.com/crm/update/L%2F1?phone=%2B919876543210'), headers: { accept: 'application/json' }, body };
}

describe('hmac adapter', () => {
  it('signs the body alone by default: HMAC-SHA256, hex, in X-Signature (a published test vector)', () => {
    const req = request('The quick brown fox jumps over the lazy dog');
    adapter.apply({ method: req.method, url: req.url, headers: req.headers, body: {} }, SECRET, {});
    adapter.sign!(req, SECRET, {}, clock);
    expect(req.headers).toEqual({ accept: 'application/json', 'X-Signature': 'f7bc83f430538424b13298e6aa6fb143ef4d59a14946175997479dbc2d1a3cd8' });
  });

  it('with a timestamp header, sends the Unix time and signs "<timestamp>.<body>"; an empty body signs as ""', () => {
    const req = request(undefined, 'GET');
    adapter.sign!(req, 's3cret', { timestampHeader: 'X-Timestamp', prefix: 'sha256=' }, clock);
    const expected = createHmac('sha256', 's3cret').update('1714986843.').digest('hex');
    expect(req.headers).toMatchObject({ 'X-Timestamp': '1714986843', 'X-Signature': `sha256=${expected}` });
  });

  it('signs the chosen parts in order: method upper-case, the path with its query as sent', () => {
    const req = request('{"a":1}', 'post');
    const options = { timestampHeader: 'X-Ts', signed: ['method', 'path', 'timestamp', 'body'] as Array<'method' | 'path' | 'timestamp' | 'body'>, separator: '\n' };
    expect(signedText(req, options, '1714986843')).toBe('POST\n/crm/update/L%2F1?phone=%2B919876543210\n1714986843\n{"a":1}');
    adapter.sign!(req, SECRET, { ...options, header: 'Signature', algorithm: 'sha512', encoding: 'base64' }, clock);
    expect(req.headers.Signature).toBe(createHmac('sha512', SECRET).update(signedText(req, options, '1714986843')).digest('base64'));
  });

  it('never puts the secret itself in the request', () => {
    const secret = 'Sk-Zq7+Vx/9=&Rw';
    const req = request('{"name":"Ana"}');
    adapter.apply({ method: req.method, url: req.url, headers: req.headers, body: { name: 'Ana' } }, secret, {});
    adapter.sign!(req, secret, { timestampHeader: 'X-Timestamp' }, clock);
    const everything = JSON.stringify({ url: req.url.toString(), headers: req.headers, body: req.body });
    for (const spelling of [secret, encodeURIComponent(secret)]) expect(everything).not.toContain(spelling);
  });

  describe('options, checked when a mapping is compiled', () => {
    beforeAll(() => registerAdapter(adapter));
    const mapping = (auth: Record<string, unknown>) => () => compileDefinition({
      name: 'm', baseUrl: 'https://crm.example.com', auth: { adapter: 'hmac', secret: 'env:X', ...auth }, flow: 'no-fetch-test', payload: '{}',
      endpoints: { create: { method: 'POST', url: '/c' } },
    } as unknown as MappingDefinition, { hash: 'h' });
    beforeAll(() => registerAdapter({ kind: 'flow', name: 'no-fetch-test', requires: ['create'], run: (ops) => ops.create() }));

    it('a signed timestamp needs the header that carries it; unknown options and values are refused', () => {
      expect(mapping({ prefix: 'sha256=', timestampHeader: 'X-Timestamp', signed: ['timestamp', 'body'] })).not.toThrow();
      const errorOf = (auth: Record<string, unknown>) => { try { mapping(auth)(); } catch (e) { return e as MappingError; } throw new Error('no error'); };
      expect(errorOf({ signed: ['timestamp', 'body'] }).errors).toEqual([{ field: 'auth.timestampHeader', message: 'is required' }]);
      expect(errorOf({ algorithm: 'md5' }).errors[0]).toMatchObject({ field: 'auth.algorithm' });
      expect(errorOf({ signed: [] }).errors[0]).toMatchObject({ field: 'auth.signed' });
      expect(errorOf({ colour: 'blue' }).errors[0]).toMatchObject({ field: expect.stringMatching(/^auth/) });
    });
  });
});
