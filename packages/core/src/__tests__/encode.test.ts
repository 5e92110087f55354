import { decodeForm, encodeForm, parseResponseBody } from '../index';

describe('form encoding', () => {
  it('round-trips +, &, =, %, spaces and unicode in keys and values', () => {
    const data = {
      name: 'A+B & C=D 100% प्रिया 😀',
      'odd&key=': 'v+1',
      custom_fields: { crm_campaign_code: 'diwali+2024&more', 'x y': 'ü' },
    };
    const text = encodeForm(data);
    expect(text).not.toMatch(/\s/);
    expect(text).toContain('name=A%2BB+%26+C%3DD+100%25+');
    expect(decodeForm(text)).toEqual(data);
  });

  it('nests keys as a[b]=c, arrays by index, null as empty, undefined left out', () => {
    const text = encodeForm({ a: { b: 'c' }, list: ['x', 2], gone: null, skip: undefined, yes: true });
    expect(decodeURIComponent(text)).toBe('a[b]=c&list[0]=x&list[1]=2&gone=&yes=true');
  });

  it('refuses a body that is not an object', () => {
    expect(() => encodeForm(['a'])).toThrow(TypeError);
    expect(encodeForm(undefined)).toBe('');
  });
});

describe('reading response bodies', () => {
  it('parses JSON, form and text by content type (and JSON that is not labelled)', () => {
    expect(parseResponseBody('{"lead_id":"L1"}', 'application/json; charset=utf-8')).toEqual({ lead_id: 'L1' });
    expect(parseResponseBody('{"lead_id":"L1"}', 'text/plain')).toEqual({ lead_id: 'L1' });
    expect(parseResponseBody('lead_id=L%2B1', 'application/x-www-form-urlencoded')).toEqual({ lead_id: 'L+1' });
    expect(parseResponseBody('OK', 'text/plain')).toBe('OK');
    expect(parseResponseBody('{broken', 'application/json')).toBe('{broken');
    expect(parseResponseBody('', 'application/json')).toBeUndefined();
  });
});
