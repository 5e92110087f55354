import { ContactValidationError, normalizePhone, parseContactEvent, toContact, type FieldError } from '../index';

const opts = { defaultTenant: 'acme' };
const base = { contactId: 'c_0042', phone: '+919876543210' };

function errorsOf(event: Record<string, unknown>, options: Parameters<typeof parseContactEvent>[1] = opts): FieldError[] {
  const r = parseContactEvent(event, options);
  if (r.ok) throw new Error(`expected ${JSON.stringify(event)} to be refused`);
  return r.errors;
}

function fieldsOf(event: Record<string, unknown>): string[] {
  return errorsOf(event).map((e) => e.field);
}

describe('phones', () => {
  it.each(['+919876543210', '919876543210', '+91 98765 43210', '+91-987-654-3210', '+91 (98765) 43210', ' +91 98765 43210 ', 919876543210])(
    'normalizes %j to E.164', (phone) => {
      const r = parseContactEvent({ ...base, phone }, opts);
      expect(r).toMatchObject({ ok: true, contact: { phone: '+919876543210' } });
    });

  it('reads a national number with the default country when there is one', () => {
    expect(normalizePhone('98765 43210', 'IN')).toBe('+919876543210');
    expect(normalizePhone('98765 43210')).toBeUndefined();
  });

  it('gives a spelling seen before the answer for its own default country (answers are kept per country)', () => {
    for (let round = 0; round < 2; round++) {
      expect(normalizePhone('020 7946 0958', 'GB')).toBe('+442079460958');
      expect(normalizePhone('020 7946 0958', 'IN')).toBe('+912079460958');
      expect(normalizePhone('020 7946 0958')).toBeUndefined();
      expect(normalizePhone('+44 20 7946 0958', 'IN')).toBe('+442079460958');
    }
  });

  it.each([
    ['missing', undefined, 'is required'],
    ['empty', '', 'is required'],
    ['null', null, 'is required'],
    ['letters', 'call me maybe', 'is not a phone number'],
    ['a digit-like word', '+91 98765 4321O', 'is not a phone number'],
    ['too short', '+1', 'is not a phone number'],
    ['too long', '+91987654321098765', 'is not a phone number'],
    ['an object', { number: '+919876543210' }, 'must be a string, got an object'],
  ])('refuses a phone that is %s', (_label, phone, message) => {
    const event: Record<string, unknown> = { ...base, phone };
    if (phone === undefined) delete event.phone;
    expect(errorsOf(event)).toEqual([{ field: 'phone', message: expect.stringContaining(message) }]);
  });
});

describe('emails', () => {
  it('keeps a valid address, trimmed', () => {
    expect(toContact({ ...base, email: ' priya.sharma@example.com ' }, opts).email).toBe('priya.sharma@example.com');
  });

  it.each(['priya', 'priya@', '@example.com', 'priya@example', 'pri ya@example.com', 'priya@@example.com', 'priya@exa_mple.com', 'priya@.example.com'])(
    'refuses %j, naming the field (not silently dropped)', (email) => {
      expect(errorsOf({ ...base, email })).toEqual([{ field: 'email', message: expect.stringContaining('is not a valid email address') }]);
    });

  it.each(['x\u0000@example.com', 'x\u0007y@example.com', 'x\u007f@example.com', 'x\u001b[31m@example.com'])('refuses an email with a control character (%j)', (email) => {
    expect(errorsOf({ ...base, email })).toEqual([{ field: 'email', message: expect.stringContaining('is not a valid email address') }]);
  });

  it('refuses an email that is not a string', () => {
    expect(errorsOf({ ...base, email: 42 })).toEqual([{ field: 'email', message: 'must be a string, got a number' }]);
  });
});

describe('attributes and tags', () => {
  it('accepts an object of scalars', () => {
    const c = toContact({ ...base, attributes: { utm_campaign: 'diwali', visits: 3, vip: true, gone: null } }, opts);
    expect(c.attributes).toEqual({ utm_campaign: 'diwali', visits: 3, vip: true, gone: null });
  });

  it.each([[null, 'null'], ['city=Mumbai', 'a string'], [['a'], 'an array'], [7, 'a number']])(
    'refuses attributes that are %j: an error, not "no attributes"', (attributes, what) => {
      expect(errorsOf({ ...base, attributes })).toEqual([{ field: 'attributes', message: `must be an object of scalar values, got ${what}` }]);
    });

  it('names each non-scalar attribute', () => {
    expect(fieldsOf({ ...base, attributes: { ok: 'x', nested: { a: 1 }, list: [1], nan: Number.NaN } }))
      .toEqual(['attributes.nested', 'attributes.list', 'attributes.nan']);
  });

  it('names an attribute whose key is not a plain name in brackets, and says why a huge number is refused', () => {
    const event = JSON.parse('{"contactId":"c1","phone":"+919876543210","attributes":{"utm.source":{},"big":1e400,"ok":1}}');
    expect(errorsOf(event)).toEqual([
      { field: 'attributes["utm.source"]', message: 'must be a string, number, boolean or null, got an object' },
      { field: 'attributes.big', message: 'must be a string, number, boolean or null, got Infinity (a number too large for JSON)' },
    ]);
  });

  it('does not let __proto__ through as an attribute', () => {
    const event = JSON.parse('{"contactId":"c1","phone":"+919876543210","attributes":{"__proto__":{"polluted":true}}}');
    expect(fieldsOf(event)).toEqual(['attributes.__proto__']);
    expect(({} as Record<string, unknown>).polluted).toBeUndefined();
    // A scalar under that name was dropped without a word (the assignment set the prototype): refused, named.
    expect(errorsOf(JSON.parse('{"contactId":"c1","phone":"+919876543210","attributes":{"__proto__":"x","constructor":"y"}}'))).toEqual([
      { field: 'attributes.__proto__', message: 'is not a usable attribute name (JavaScript reserves __proto__): rename the attribute' },
    ]);
  });

  it('names each tag that is not a string', () => {
    expect(errorsOf({ ...base, tags: ['vip', 3, null] })).toEqual([
      { field: 'tags[1]', message: 'must be a string, got a number' },
      { field: 'tags[2]', message: 'must be a string, got null' },
    ]);
    expect(errorsOf({ ...base, tags: 'vip' })).toEqual([{ field: 'tags', message: 'must be an array of strings, got a string' }]);
  });
});

describe('ts', () => {
  it('keeps an ISO 8601 time, normalized to UTC', () => {
    expect(toContact({ ...base, ts: '2024-05-06T14:44:03.000+05:30' }, opts).ts).toBe('2024-05-06T09:14:03.000Z');
    expect(toContact({ ...base, ts: '2024-05-06T09:14:03Z' }, opts).ts).toBe('2024-05-06T09:14:03.000Z');
    expect(toContact({ ...base, ts: 1714986843000 }, opts).ts).toBe('2024-05-06T09:14:03.000Z');
  });

  it('with the server clock, refuses a ts more than a day ahead (it would make every later change look older)', () => {
    const now = Date.parse('2026-11-26T09:00:00Z');
    const at = (ts: unknown) => parseContactEvent({ ...base, ts }, { ...opts, now });
    expect(at('2026-11-27T08:59:59Z')).toMatchObject({ ok: true, contact: { ts: '2026-11-27T08:59:59.000Z' } });
    expect(at('2026-11-27T09:00:00Z').ok).toBe(true);
    expect(at('2026-11-27T12:30:00Z')).toEqual({ ok: false, errors: [{ field: 'ts', message: expect.stringMatching(/^is 27 hours ahead of this server's clock \(2026-11-27T12:30:00.000Z; at most a day is accepted\): .*seconds or microseconds/) }] });
    // Microseconds read as milliseconds: about 55,000 years ahead.
    expect(at(now * 1000)).toEqual({ ok: false, errors: [{ field: 'ts', message: expect.stringMatching(/^is 5\d{4} years ahead/) }] });
    expect(at('2027-02-01T00:00:00Z')).toEqual({ ok: false, errors: [{ field: 'ts', message: expect.stringMatching(/^is 66 days ahead/) }] });
    // Without a clock (a library caller), no bound.
    expect(parseContactEvent({ ...base, ts: '2127-01-01T00:00:00Z' }, opts).ok).toBe(true);
  });

  it('quotes a number it refuses as the number (not as JSON would spell it)', () => {
    expect(errorsOf(JSON.parse('{"contactId":"c1","phone":"+919876543210","ts":1e400}'))).toEqual([{ field: 'ts', message: expect.stringMatching(/got Infinity$/) }]);
  });

  it.each(['garbage', '5', 'May 6, 2024', '2024-13-45T00:00:00Z', '2024-02-30T00:00:00Z', '2024-05-06T24:00:00Z', '2024-05-06T09:14:03', '2024-05-06 09:14', true, 1e20, {}])('refuses ts %j', (ts) => {
    expect(errorsOf({ ...base, ts })).toEqual([{ field: 'ts', message: expect.stringContaining('must be an ISO 8601 time') }]);
  });
});

describe('ids, tenants and sizes', () => {
  it.each(['.', '..'])('refuses the contactId %j, which no URL can name (its status could never be read)', (contactId) => {
    expect(errorsOf({ ...base, contactId })).toEqual([{ field: 'contactId', message: `must not be "${contactId}"` }]);
    expect(toContact({ ...base, contactId: '...' }, opts).contactId).toBe('...');
  });

  it('requires contactId and names a wrong type', () => {
    expect(errorsOf({ phone: base.phone })).toEqual([{ field: 'contactId', message: 'is required' }]);
    expect(errorsOf({ ...base, contactId: 42 })).toEqual([{ field: 'contactId', message: 'must be a string, got a number' }]);
  });

  it('takes the only tenant, refuses an unknown one and asks for one when there are several', () => {
    expect(toContact(base, { tenants: ['acme'] }).tenant).toBe('acme');
    expect(errorsOf({ ...base, tenant: 'globex' }, { tenants: ['acme'] })).toEqual([{ field: 'tenant', message: 'unknown tenant "globex"' }]);
    expect(errorsOf(base, { tenants: ['acme', 'globex'] })).toEqual([{ field: 'tenant', message: expect.stringContaining('is required') }]);
  });

  it('uses the default tenant only for an absent tenant, not for one of the wrong type', () => {
    expect(toContact({ ...base, tenant: '' }, { defaultTenant: 'acme' }).tenant).toBe('acme');
    expect(toContact({ ...base, tenant: null }, { defaultTenant: 'acme' }).tenant).toBe('acme');
    expect(errorsOf({ ...base, tenant: 7 }, { defaultTenant: 'acme' })).toEqual([{ field: 'tenant', message: 'must be a string, got a number' }]);
  });

  it.each([['contactId', 257], ['eventId', 257], ['name', 1025], ['email', 255]])('refuses a %s longer than its limit', (field, length) => {
    const value = field === 'email' ? `${'a'.repeat(length - 12)}@example.com` : 'a'.repeat(length);
    expect(errorsOf({ ...base, [field]: value })).toEqual([{ field, message: expect.stringMatching(/must be at most \d+ characters/) }]);
  });

  it('refuses something that is not an object', () => {
    for (const input of [null, 'x', [base]]) expect(parseContactEvent(input, opts)).toMatchObject({ ok: false, errors: [{ field: '(event)' }] });
  });

  it('reports every bad field at once; toContact throws them as one typed error', () => {
    const bad = { contactId: 'c9', phone: 'nope', email: 'x@', attributes: 'y', tags: [1], ts: 'later' };
    let err: unknown;
    try { toContact(bad, opts); } catch (e) { err = e; }
    expect(err).toBeInstanceOf(ContactValidationError);
    const e = err as ContactValidationError;
    expect(e.code).toBe('ERR_CONTACT_INVALID');
    expect(e.retryable).toBe(false);
    expect(e.context).toMatchObject({ contactId: 'c9', step: 'validate' });
    expect(e.errors.map((x) => x.field)).toEqual(['phone', 'email', 'tags[0]', 'attributes', 'ts']);
  });
});
