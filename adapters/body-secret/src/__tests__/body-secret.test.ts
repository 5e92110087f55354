import { PermanentError, type OutgoingRequest } from '@crm-sync/core';
import { runAuthAdapterSuite } from '@crm-sync/testkit';
import { adapter } from '..';

const SECRET = 's3cret+with&form=chars';

function request(body: unknown): OutgoingRequest {
  return { method: body === undefined ? 'GET' : 'POST', url: new URL('https://crm.example.com/crm/fetch?phone=%2B919876543210'), headers: {}, body };
}

describe('body-secret adapter', () => {
  it('adds the secret as the body field `secret` by default, keeping the other fields', () => {
    const req = request({ name: 'Ana', custom_fields: { a: 1 } });
    adapter.apply(req, SECRET, {});
    expect(req.body).toEqual({ name: 'Ana', custom_fields: { a: 1 }, secret: SECRET });
    expect(req.url.searchParams.has('secret')).toBe(false);
  });

  it('does not change the body object the engine handed it (the payload is shared with the result)', () => {
    const payload = { name: 'Ana' };
    adapter.apply(request(payload), SECRET, { field: 'api_key' });
    expect(payload).toEqual({ name: 'Ana' });
  });

  it('puts the secret in the query string of a request without a body (a GET fetch)', () => {
    const req = request(undefined);
    adapter.apply(req, SECRET, { field: 'api_key' });
    expect(req.url.searchParams.get('api_key')).toBe(SECRET);
    expect(req.url.searchParams.get('phone')).toBe('+919876543210');
    expect(req.body).toBeUndefined();
  });

  it('puts the secret in the query string, not the body, with in: query', () => {
    const req = request({ name: 'Ana' });
    adapter.apply(req, SECRET, { in: 'query' });
    expect(req.url.searchParams.get('secret')).toBe(SECRET);
    expect(req.body).toEqual({ name: 'Ana' });
  });

  it('refuses a body it cannot add a field to, with a permanent error that says what to do', () => {
    let thrown: unknown;
    try {
      adapter.apply(request([{ name: 'Ana' }]), SECRET, { field: 'api_key' });
    } catch (err) {
      thrown = err;
    }
    expect(thrown).toBeInstanceOf(PermanentError);
    expect(thrown).toMatchObject({ code: 'ERR_AUTH_BODY', message: expect.stringMatching(/object body.*"api_key".*in: query/) });
  });
});

runAuthAdapterSuite(adapter, {
  secret: SECRET,
  cases: [
    { options: {}, bodies: ['object', 'none'], at: { object: 'body:secret', none: 'query:secret' } },
    { options: { field: 'api_key' }, bodies: ['object', 'none'], at: { object: 'body:api_key', none: 'query:api_key' } },
    { options: { field: 'token', in: 'query' }, at: 'query:token' },
  ],
});
