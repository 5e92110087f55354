import { compileTemplate, MappingError } from '../index';

const path = compileTemplate('/crm/update/{{leadId}}', 'endpoints.update.url', { strict: true, encode: true, file: 'acme.yaml' });

function renderError(leadId: string): MappingError {
  try { path.render({ leadId }); } catch (err) { return err as MappingError; }
  throw new Error(`expected ${JSON.stringify(leadId)} to be refused`);
}

describe('URL path templates', () => {
  it.each([
    ['ld/42', '/crm/update/ld%2F42'],
    ['a?b=c', '/crm/update/a%3Fb%3Dc'],
    ['a#frag', '/crm/update/a%23frag'],
    ['../admin', '/crm/update/..%2Fadmin'],
    ['%2F', '/crm/update/%252F'],
    ['a&b\'c"<x>', '/crm/update/a%26b\'c%22%3Cx%3E'],
    ['ü 1', '/crm/update/%C3%BC%201'],
    ['...', '/crm/update/...'],
  ])('keeps lead id %j one path segment', (leadId, expected) => {
    const out = path.render({ leadId });
    expect(out).toBe(expected);
    expect(new URL(out, 'https://crm.example.com').pathname.split('/')).toHaveLength(4);
  });

  it('encodes triple-stash values too: no template syntax escapes encoding', () => {
    expect(compileTemplate('/crm/{{{leadId}}}', 'u', { strict: true, encode: true }).render({ leadId: 'a/b' })).toBe('/crm/a%2Fb');
  });

  it('does not HTML-escape (& and \' stay as they are, before percent-encoding)', () => {
    const header = compileTemplate('{{contact.name}}', 'endpoints.create.headers.x-name', { strict: false, encode: false });
    expect(header.render({ contact: { name: "Tom & Jerry's <shop>" } })).toBe("Tom & Jerry's <shop>");
  });

  it.each(['.', '..'])('refuses %j: the URL API would resolve it as a path segment', (leadId) => {
    const err = renderError(leadId);
    expect(err).toBeInstanceOf(MappingError);
    expect(err.code).toBe('ERR_UNSAFE_URL_VALUE');
    expect(err.errors[0]!.field).toBe('endpoints.update.url');
  });

  it('names the template when a strict template misses a value', () => {
    expect(() => path.render({})).toThrow(expect.objectContaining({ code: 'ERR_MAPPING_TEMPLATE', message: expect.stringContaining('endpoints.update.url') }));
  });

  it.each([
    ['{{#if leadId}}/crm/update/{{leadId}}{{else}}/crm/create{{/if}}', '/crm/update/a%2Fb'],
    ['/t/{{#with contact}}{{phone}}/{{attributes.city}}{{/with}}', '/t/%2B1%2F2/x%2Fy'],
    ['/t/{{#each contact.tags}}{{this}},{{/each}}', '/t/a%2Fb,c%3F,'],
    ['/crm/{{@root.leadId}}', '/crm/a%2Fb'],
    ['/crm/{{this.leadId}}', '/crm/a%2Fb'],
    ['/crm/{{lookup contact.attributes "city"}}', '/crm/x%2Fy'],
  ])('encodes every value however the template reaches it: %s', (source, expected) => {
    const data = { leadId: 'a/b', contact: { phone: '+1/2', tags: ['a/b', 'c?'], attributes: { city: 'x/y' } }, payload: { big: 'x' } };
    expect(compileTemplate(source, 'u', { strict: false, encode: true }).render(data)).toBe(expected);
  });

  it('renders numbers and nested values', () => {
    const t = compileTemplate('/t/{{tenant}}/c/{{contact.attributes.n}}/{{leadId}}', 'u', { strict: true, encode: true });
    expect(t.render({ tenant: 'a b', contact: { attributes: { n: 7 } }, leadId: 42 })).toBe('/t/a%20b/c/7/42');
  });
});

describe('the eq helper', () => {
  const t = compileTemplate('/crm/fetch?{{#if (eq match.key "phone")}}mobile_number{{else}}work_email{{/if}}={{match.value}}', 'endpoints.fetch.url', {
    strict: true, encode: true, scope: { names: { match: ['key', 'value'] } },
  });

  it('names a parameter after the match key', () => {
    expect(t.render({ match: { key: 'phone', value: '+919876543210' } })).toBe('/crm/fetch?mobile_number=%2B919876543210');
    expect(t.render({ match: { key: 'email', value: 'a@b.c' } })).toBe('/crm/fetch?work_email=a%40b.c');
  });

  it('compares as text; absent equals only absent or null', () => {
    const eq = compileTemplate('{{#if (eq a b)}}y{{else}}n{{/if}}', 'x', { strict: false, encode: false });
    expect([eq.render({ a: 1, b: '1' }), eq.render({ a: 'x', b: 'y' }), eq.render({}), eq.render({ a: null }), eq.render({ a: '' })]).toEqual(['y', 'n', 'y', 'y', 'n']);
  });
});
