/** parseContactEvent is the gate for every event: any value in → ok or field errors out, never a throw. */
import fc from 'fast-check';
import { parseContactEvent } from '@crm-sync/core';
import { mutate, mutations, params } from './support';

const VALID = { eventId: 'e1', tenant: 'acme', contactId: 'c1', phone: '+91 98765 43210', email: 'priya@example.com', name: 'Priya', tags: ['vip'], attributes: { city: 'Mumbai', n: 3 }, ts: '2024-05-06T09:14:03.000Z' };
const OPTIONS = { tenants: ['acme', 'globex'], defaultTenant: 'acme' };

function check(input: unknown): void {
  const r = parseContactEvent(input, OPTIONS);
  if (r.ok) {
    expect(r.contact.phone).toMatch(/^\+[1-9]\d{6,14}$/);
    expect(typeof r.contact.contactId).toBe('string');
    expect(OPTIONS.tenants).toContain(r.contact.tenant);
  } else {
    expect(r.errors.length).toBeGreaterThan(0);
    for (const e of r.errors) {
      expect(typeof e.field).toBe('string');
      expect(e.field.length).toBeGreaterThan(0);
      expect(typeof e.message).toBe('string');
    }
  }
}

describe('parseContactEvent never throws', () => {
  it('on any value at all', () => {
    fc.assert(fc.property(fc.anything({ withBigInt: true, withDate: true, withMap: true, withSet: true, withTypedArray: true, withSparseArray: true, withNullPrototype: true }), (v) => check(v)), params(500));
  });

  it('on mutations of a valid event (wrong types, missing and renamed fields, hostile values)', () => {
    fc.assert(fc.property(mutations, (edits) => check(mutate(VALID, edits))), params(500));
  });

  it('on JSON text with __proto__ and constructor keys', () => {
    fc.assert(fc.property(fc.constantFrom('__proto__', 'constructor', 'prototype', 'toString'), fc.jsonValue({ maxDepth: 2 }), (key, value) => {
      const event = JSON.parse(`{"contactId":"c1","phone":"+919876543210","attributes":{${JSON.stringify(key)}:${JSON.stringify(value)}},${JSON.stringify(key)}:${JSON.stringify(value)}}`);
      check(event);
      expect(({} as Record<string, unknown>).polluted).toBeUndefined();
    }), params(200));
  });
});
