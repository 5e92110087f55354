import { applyClearedFields, unionPayloads } from '../index';

const previous = { name: 'Priya', email: 'p@example.com', custom_fields: { city: 'Mumbai', utm: 'diwali', empty: '' }, wrapper: { deep: { x: 1 } } };
const now = { name: 'Priya', custom_fields: { city: 'Pune' } };

describe('cleared fields', () => {
  it('null: sends a removed field as null, nested and whole objects too', () => {
    expect(applyClearedFields(now, previous, 'null')).toEqual({
      name: 'Priya', email: null, custom_fields: { city: 'Pune', utm: null }, wrapper: { deep: { x: null } },
    });
  });

  it('empty-string: sends a removed field as ""', () => {
    expect(applyClearedFields(now, previous, 'empty-string')).toEqual({
      name: 'Priya', email: '', custom_fields: { city: 'Pune', utm: '' }, wrapper: { deep: { x: '' } },
    });
  });

  it('omit: sends the payload as it is', () => {
    expect(applyClearedFields(now, previous, 'omit')).toBe(now);
  });

  it('returns the payload itself when nothing was removed', () => {
    const same = { name: 'Priya', custom_fields: { city: 'Pune' } };
    expect(applyClearedFields(same, { name: 'Old', custom_fields: { city: 'Mumbai' } }, 'null')).toBe(same);
  });

  it('leaves the payload alone without a previous payload, and does not change its input', () => {
    expect(applyClearedFields(now, undefined, 'null')).toBe(now);
    const copy = structuredClone(now);
    applyClearedFields(now, previous, 'null');
    expect(now).toEqual(copy);
  });
});

describe('unionPayloads', () => {
  it('joins objects field by field (the second wins a leaf both have); arrays and scalars are leaves', () => {
    expect(unionPayloads({ name: 'A', custom_fields: { k: 'x', n: 1 }, tags: ['a'] }, { name: 'B', custom_fields: { j: 'y', n: 2 }, tags: ['b', 'c'] }))
      .toEqual({ name: 'B', custom_fields: { k: 'x', j: 'y', n: 2 }, tags: ['b', 'c'] });
    expect(unionPayloads({ a: { b: 1 } }, { a: 'flat' })).toEqual({ a: 'flat' });
  });

  it('keeps a field named __proto__ (JSONata makes it an own key) as a field, in the join and when clearing it', () => {
    const lost = JSON.parse('{"name":"A","__proto__":"x"}') as Record<string, unknown>;
    const joined = unionPayloads({ name: 'A' }, lost) as Record<string, unknown>;
    expect(Object.getPrototypeOf(joined)).toBe(Object.prototype);
    expect(JSON.stringify(joined)).toBe('{"name":"A","__proto__":"x"}');
    const cleared = applyClearedFields({ name: 'B' }, joined, 'null') as Record<string, unknown>;
    expect(Object.getPrototypeOf(cleared)).toBe(Object.prototype);
    expect(JSON.stringify(cleared)).toBe('{"name":"B","__proto__":null}');
  });

  it('one side absent: the other, unchanged', () => {
    const p = { name: 'A' };
    expect(unionPayloads(undefined, p)).toBe(p);
    expect(unionPayloads(p, undefined)).toBe(p);
    expect(unionPayloads(null, p)).toBe(p);
  });

  it('joined, it makes applyClearedFields clear what either payload set and the new one lacks', () => {
    const confirmed = { name: 'A', custom_fields: { city: 'Mumbai' } };
    const lost = { name: 'A', custom_fields: { city: 'Mumbai', utm: 'diwali' }, email: 'a@example.com' };
    expect(applyClearedFields({ name: 'A', custom_fields: { city: 'Pune' } }, unionPayloads(confirmed, lost), 'null'))
      .toEqual({ name: 'A', custom_fields: { city: 'Pune', utm: null }, email: null });
  });
});
