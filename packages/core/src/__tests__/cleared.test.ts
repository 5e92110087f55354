import { applyClearedFields } from '../index';

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
