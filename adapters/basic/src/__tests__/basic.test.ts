import { compileDefinition, MappingError, registerAdapter, type MappingDefinition, type OutgoingRequest } from '@crm-sync/core';
import { runAuthAdapterSuite } from '@crm-sync/testkit';
import { adapter } from '..';

function authorization(secret: string, options: Record<string, unknown> = {}, header = 'Authorization'): string | undefined {
  const req: OutgoingRequest = { method: 'GET', url: new URL('https://crm.example.com/x'), headers: {}, body: undefined };
  adapter.apply(req, secret, options);
  return req.headers[header];
}

describe('basic adapter', () => {
  it('sends base64 of user:password, UTF-8 (the RFC 7617 examples)', () => {
    expect(authorization('open sesame', { username: 'Aladdin' })).toBe('Basic QWxhZGRpbjpvcGVuIHNlc2FtZQ==');
    expect(authorization('test:123£')).toBe('Basic dGVzdDoxMjPCow==');
  });

  it('takes the secret as the username for a fixed password (an API key as the user), in the header the mapping names', () => {
    expect(authorization('api-key-1', { password: 'X', header: 'X-Auth' }, 'X-Auth')).toBe(`Basic ${Buffer.from('api-key-1:X').toString('base64')}`);
  });

  it('takes a secret without a colon as a user with an empty password (an API key as the user, Stripe)', () => {
    expect(authorization('sk_test_1')).toBe(`Basic ${Buffer.from('sk_test_1:').toString('base64')}`);
  });

  it('refuses a username with a colon, without repeating it', () => {
    expect(() => authorization('s3cret:b', { password: 'X' })).toThrow(expect.objectContaining({ code: 'ERR_AUTH_SECRET', retryable: false }));
    try { authorization('s3cret:b', { password: 'X' }); } catch (err) { expect((err as Error).message).not.toContain('s3cret'); }
  });

  it('declares the base64 and the pair as derived secrets, so they are masked like the secret', () => {
    expect(adapter.derivedSecrets!('open sesame', { username: 'Aladdin' })).toEqual(['QWxhZGRpbjpvcGVuIHNlc2FtZQ==', 'Aladdin:open sesame']);
  });

  describe('options, checked when a mapping is compiled', () => {
    beforeAll(() => {
      registerAdapter(adapter);
      registerAdapter({ kind: 'flow', name: 'basic-test-flow', requires: ['create'], run: (ops) => ops.create() });
    });
    const compile = (auth: Record<string, unknown>) => compileDefinition({
      name: 'm', baseUrl: 'https://crm.example.com', auth: { adapter: 'basic', secret: 'env:X', ...auth }, flow: 'basic-test-flow', payload: '{}',
      endpoints: { create: { method: 'POST', url: '/c' } },
    } as unknown as MappingDefinition, { hash: 'h' });

    it('a username with a colon, or both username and password, are refused', () => {
      const errorOf = (auth: Record<string, unknown>) => { try { compile(auth); } catch (e) { return e as MappingError; } throw new Error('no error'); };
      expect(errorOf({ username: 'a:b' }).errors[0]).toMatchObject({ field: 'auth.username' });
      expect(errorOf({ username: 'a', password: 'X' }).errors[0]).toMatchObject({ field: 'auth' });
      expect(() => compile({ username: 'api' })).not.toThrow();
    });
  });
});

runAuthAdapterSuite(adapter, {
  secret: 'user:pa55+/word',
  cases: [
    { options: {}, at: 'header:Authorization' },
    { options: { username: 'api' }, at: 'header:Authorization' },
  ],
});

// With a fixed password the secret is the username, which cannot hold a colon.
runAuthAdapterSuite(adapter, { secret: 'api-key-pa55+/word', cases: [{ options: { password: 'X', header: 'X-Auth' }, at: 'header:X-Auth' }] });
