import type { OutgoingRequest } from '@crm-sync/core';
import { runAuthAdapterSuite } from '@crm-sync/testkit';
import { adapter } from '..';

const SECRET = 'k3y+with/special=chars&more';

function request(): OutgoingRequest {
  return { method: 'POST', url: new URL('https://crm.example.com/crm/create'), headers: { accept: 'application/json' }, body: { name: 'Ana' } };
}

describe('auth-key adapter', () => {
  it('sends the key as the contract says: Auth-Key: <key>', () => {
    const req = request();
    adapter.apply(req, SECRET, {});
    expect(req.headers).toEqual({ accept: 'application/json', 'Auth-Key': SECRET });
  });

  it('uses the header the mapping names', () => {
    const req = request();
    adapter.apply(req, SECRET, { header: 'X-Api-Key' });
    expect(req.headers['X-Api-Key']).toBe(SECRET);
    expect(req.headers['Auth-Key']).toBeUndefined();
  });

  it('leaves the URL and the body alone', () => {
    const req = request();
    adapter.apply(req, SECRET, {});
    expect(req.url.toString()).toBe('https://crm.example.com/crm/create');
    expect(req.body).toEqual({ name: 'Ana' });
  });
});

runAuthAdapterSuite(adapter, {
  secret: SECRET,
  cases: [{ options: {}, at: 'header:Auth-Key' }, { options: { header: 'X-Api-Key' }, at: 'header:X-Api-Key' }],
});
