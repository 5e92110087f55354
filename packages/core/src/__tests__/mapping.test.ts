import { mkdtempSync, readFileSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { registerBuiltinAdapters } from '@crm-sync/runner';
import { compileExpression, compileMapping, loadMappingFile, MappingError, parseMapping, type FieldError } from '../index';
import { readSeedMapping } from './seed';

beforeAll(() => registerBuiltinAdapters());

const seed = readSeedMapping();

/** The seed contract with one line changed: each bad mapping below differs from a good one by exactly that. */
function seedWith(find: string | RegExp, replace: string): string {
  const text = seed.replace(find, replace);
  if (text === seed) throw new Error(`the seed mapping has no ${String(find)}`);
  return text;
}

function mappingError(f: () => unknown): MappingError {
  try { f(); } catch (err) {
    if (err instanceof MappingError) return err;
    throw err;
  }
  throw new Error('expected a MappingError');
}

const compileBad = (text: string) => mappingError(() => compileMapping(text, { file: 'mappings/acme.yaml' }));

describe('loading a mapping file', () => {
  it('compiles the seed contract', () => {
    expect(compileMapping(seed, { file: 'seed-contract.yaml' }).name).toBe('seed-contract');
  });

  it.each<[string, string | RegExp, string, FieldError]>([
    ['a wrong enum', 'update: { method: POST', 'update: { method: FETCH',
      { field: 'endpoints.update.method', message: expect.stringMatching(/^must be one of "GET", "POST", "PUT", "PATCH", "DELETE" \(line \d+\)$/) }],
    ['an unknown field', 'timeoutMs: 10000', 'timeoutMs: 10000\nretries: 3', { field: 'retries', message: expect.stringMatching(/^is not a known field \(line \d+\)$/) }],
    ['a misspelt field, with the one meant', 'timeoutMs: 10000', 'timeoutMS: 10000', { field: 'timeoutMS', message: expect.stringMatching(/^is not a known field; did you mean timeoutMs\? \(line \d+\)$/) }],
    ['a misspelt reader', 'notFound: status', 'notfound: status', { field: 'responses.notfound', message: expect.stringMatching(/^is not a known field; did you mean notFound\? \(line \d+\)$/) }],
    ['a misspelt adapter option', 'header: Auth-Key,', 'heder: Auth-Key,', { field: 'auth.heder', message: expect.stringMatching(/^is not a known field; did you mean header\? \(line 6\)$/) }],
    ['a missing required field', /^baseUrl:.*\n/m, '', { field: 'baseUrl', message: 'is required' }],
    ['a wrong type', 'timeoutMs: 10000', 'timeoutMs: fast', { field: 'timeoutMs', message: expect.stringContaining('must be integer') }],
    ['a literal secret', '"env:SEED_CRM_AUTH_KEY"', 'hunter2', { field: 'auth.secret', message: expect.stringMatching(/^must say where the secret is, env:NAME or file:\/path\/to\/secret, never the secret itself \(line 6\)$/) }],
    ['a base URL without its scheme', 'baseUrl: https://crm.example.com', 'baseUrl: crm.example.com/api', { field: 'baseUrl', message: expect.stringMatching(/^must be https:\/\/host or https:\/\/host\/path: with the scheme/) }],
    ['an expression written as a YAML map', /^payload: \|\n(?: {2}.*\n)+/m, 'payload:\n  phone: contact.phone\n', { field: 'payload', message: expect.stringMatching(/^must be string: a JSONata expression is text; write it as a block, `key: \|`/) }],
    ['an example result that is not an action', 'result: { action: created, leadId: example-lead-1 }', 'result: { action: create, leadId: example-lead-1 }', { field: 'examples[0].result.action', message: expect.stringMatching(/^must be one of "created", "updated", "upserted"/) }],
    ['a missing endpoint the flow needs', /^ {2}create:.*\n/m, '', { field: 'endpoints.create', message: expect.stringMatching(/^is required by the fetch-create-update flow \(line \d+\)$/) }],
    ['a bad auth option', 'header: Auth-Key,', 'header: "Auth Key",', { field: 'auth.header', message: expect.stringMatching(/^must be an HTTP header name: letters, digits and .* \(line 6\)$/) }],
    ['an unknown flow adapter', 'flow: fetch-create-update', 'flow: carrier-pigeon', { field: 'flow', message: expect.stringMatching(/^no flow adapter named "carrier-pigeon" is registered; the flow adapters are fetch-create-update, no-fetch, update-only, upsert \(line \d+\)$/) }],
  ])('names the file, the path and the expectation for %s', (_label, find, replace, expected) => {
    const err = compileBad(seedWith(find, replace));
    expect(err.file).toBe('mappings/acme.yaml');
    expect(err.errors).toEqual([expected]);
    expect(err.message).toMatch(new RegExp(`^mappings/acme\\.yaml: ${expected.field.replace(/[.[\]]/g, '\\$&')}: `));
    expect(err.retryable).toBe(false);
  });

  it('does not echo a literal secret back', () => {
    expect(compileBad(seedWith('"env:SEED_CRM_AUTH_KEY"', 'hunter2-literal')).message).not.toContain('hunter2-literal');
  });

  it('gives the line of a YAML syntax error', () => {
    const lines = seed.split('\n');
    const at = lines.findIndex((l) => l.startsWith('timeoutMs:'));
    lines.splice(at + 1, 0, 'retries: 3: 4');
    const err = compileBad(lines.join('\n'));
    expect(err.code).toBe('ERR_MAPPING_SYNTAX');
    expect(err.errors[0]).toEqual({ field: `line ${at + 2}`, message: expect.stringContaining(`at line ${at + 2}, column`) });
  });

  it('refuses duplicate keys and broken JSON', () => {
    expect(compileBad(seedWith('timeoutMs: 10000', 'timeoutMs: 10000\ntimeoutMs: 5')).code).toBe('ERR_MAPPING_SYNTAX');
    expect(mappingError(() => parseMapping('{"name": "x",', 'acme.json'))).toMatchObject({ code: 'ERR_MAPPING_SYNTAX', file: 'acme.json' });
  });

  it('reads a file from disk and names an unreadable one', () => {
    const dir = mkdtempSync(join(tmpdir(), 'crm-sync-mapping-'));
    const path = join(dir, 'acme.yaml');
    writeFileSync(path, seed);
    expect(loadMappingFile(path).definition.name).toBe('seed-contract');
    expect(mappingError(() => loadMappingFile(join(dir, 'missing.yaml')))).toMatchObject({
      code: 'ERR_MAPPING_READ', file: join(dir, 'missing.yaml'), errors: [{ field: '(file)', message: 'cannot be read: ENOENT' }],
    });
  });
});

describe('expressions and templates', () => {
  it('names the expression path and the position of a JSONata syntax error', () => {
    const err = compileBad(seedWith('"name": contact.name,', '"name": contact.name +,'));
    expect(err.code).toBe('ERR_MAPPING_EXPRESSION');
    expect(err.errors).toEqual([{ field: 'payload', message: expect.stringMatching(/^JSONata syntax error S0211 at position \d+ near ",": /) }]);

    const reader = compileBad(seedWith('leadId: body.lead_id', 'leadId: body.lead_id[['));
    expect(reader.errors).toEqual([{ field: 'responses.leadId', message: expect.stringContaining('at position') }]);
  });

  it('gives the file line of a JSONata error inside a `|` block, and of a reader', () => {
    const line = seed.split('\n').findIndex((l) => l.includes('"name": contact.name,')) + 1;
    const err = compileBad(seedWith('"name": contact.name,', '"name": contact.name +,'));
    expect(err.errors[0]!.message).toMatch(new RegExp(`\\(line ${line}\\)$`));
    const readerLine = seed.split('\n').findIndex((l) => l.includes('leadId: body.lead_id')) + 1;
    expect(compileBad(seedWith('leadId: body.lead_id', 'leadId: body.lead_id[[')).errors[0]!.message).toMatch(new RegExp(`\\(line ${readerLine}\\)$`));
  });

  it('shows the first few YAML syntax errors, not the hundreds that follow from one, with a hint for an unquoted value', () => {
    const err = compileBad(seedWith(/^description: .*$/m, 'description: Token auth, {"contact": {...}} bodies'));
    expect(err.code).toBe('ERR_MAPPING_SYNTAX');
    expect(err.errors.length).toBeLessThanOrEqual(6);
    expect(err.errors[0]).toEqual({ field: 'line 4', message: expect.stringContaining('needs quotes') });
    expect(err.errors.at(-1)).toEqual({ field: '(document)', message: expect.stringMatching(/^\d+ more syntax errors after these/) });
  });

  it('names the template path of a Handlebars syntax error', () => {
    const err = compileBad(seedWith('"/crm/update/{{leadId}}"', '"/crm/update/{{leadId"'));
    expect(err.code).toBe('ERR_MAPPING_TEMPLATE');
    expect(err.errors).toEqual([{ field: 'endpoints.update.url', message: expect.stringMatching(/^Handlebars syntax error: line 1 of the template, after "\/crm\/update\/\{\{": Expecting 'ID'.*, got 'INVALID' \(line \d+\)$/) }]);
    expect(compileBad(seedWith('email: "{{contact.email}}"', 'email: "{{#if contact.email}}x"')).errors[0]!.field).toBe('endpoints.fetch.query.email');
  });

  it.each([
    ['an endless loop', '($loop := function($i) { $loop($i + 1) }; $loop(0))'],
    ['a huge range', '$sum([1..10000000].($ * 2))'],
    ['deep recursion', '($f := function($n) { $n = 0 ? 0 : 1 + $f($n - 1) }; $f(100000))'],
    ['a loop inside $eval', '$eval("($l := function($i) { $l($i + 1) }; $l(0))")'],
    ['a loop through an alias of $eval', '($e := $eval; $e("($l := function($i) { $l($i + 1) }; $l(0))"))'],
    ['a loop built by partial application', '($l := function($i, $j) { $l($i + 1, $j) }; $p := $l(?, 1); $p(0))'],
  ])('stops %s instead of waiting for it', async (_label, source) => {
    const expr = compileExpression(source, 'payload', 'acme.yaml');
    const started = Date.now();
    const err = await expr.evaluate({}).then(() => undefined, (e: unknown) => e);
    expect(err).toBeInstanceOf(MappingError);
    expect(err).toMatchObject({ code: 'ERR_MAPPING_EVALUATION', errors: [{ field: 'payload', message: expect.stringMatching(/ran longer than|recursed deeper than|Evaluation timeout/) }] });
    expect(Date.now() - started).toBeLessThan(2000);
  });

  it('offers phone and name helpers to every expression', async () => {
    const expr = compileExpression('[$digits(p), $nationalNumber(p), $countryCallingCode(p), $firstName(n), $lastName(n), $lastName("Priya", true)]', 'payload');
    expect(await expr.evaluate({ p: '+919876543210', n: ' Priya  Sharma ' })).toEqual(['919876543210', '9876543210', '91', 'Priya', 'Sharma', 'Priya']);
  });
});

describe('mistakes found when compiled, not when a contact first meets them', () => {
  const templateError = (find: string, replace: string) => {
    const err = compileBad(seedWith(find, replace));
    expect(err.code).toBe('ERR_MAPPING_TEMPLATE');
    return err.errors;
  };

  it.each<[string, string, string, string, RegExp]>([
    ['a name the data does not have', '"/crm/update/{{leadId}}"', '"/crm/update/{{lead_id}}"', 'endpoints.update.url',
      /^\{\{lead_id\}\} \(at 1:15\): there is no "lead_id"; a template can use contact, leadId, tenant, match, payload, vars, secrets \(line 20\)$/],
    ['a contact field misspelt in a query', 'email: "{{contact.email}}"', 'email: "{{contact.emial}}"', 'endpoints.fetch.query.email',
      /^\{\{contact.emial\}\} \(at 1:3\): contact has no "emial"; it has tenant, contactId, phone, email, name, tags, attributes, eventId, ts \(line 18\)$/],
    ['a match part misspelt', 'url: /crm/fetch,', 'url: "/crm/fetch/{{match.kee}}",', 'endpoints.fetch.url', /match has no "kee"; it has key, value/],
    ['a helper that does not exist', '"/crm/update/{{leadId}}"', '"/crm/update/{{upper leadId}}"', 'endpoints.update.url',
      /^upper \(at 1:13\): no helper of that name; the helpers are .*backslashEscape/],
    ['a lead id where create never has one', 'url: /crm/create }', 'url: "/crm/create/{{leadId}}" }', 'endpoints.create.url',
      /leadId is never set here \(create is sent when there is no lead id yet\)/],
    ['a match outside fetch', '"/crm/update/{{leadId}}"', '"/crm/update/{{leadId}}/{{match.value}}"', 'endpoints.update.url',
      /match is never set here \(only fetch is sent with a match\)/],
    ['@root reaching a name that does not exist', '"/crm/update/{{leadId}}"', '"/crm/update/{{leadId}}{{#each contact.tags}}{{@root.contact.tag}}{{/each}}"', 'endpoints.update.url',
      /contact has no "tag"/],
    ['a part of match read by a URL\'s condition outside fetch (it throws when match is not set)', '"/crm/update/{{leadId}}"', '"/crm/update/{{leadId}}{{#if match.key}}/p{{/if}}"', 'endpoints.update.url',
      /match is never set here \(only fetch is sent with a match\), and a URL cannot read a part of it; test \{\{#if match\}\} instead/],
    ['a part of match compared outside fetch', '"/crm/update/{{leadId}}"', '"/crm/update/{{leadId}}{{#if (eq match.key \'phone\')}}/p{{/if}}"', 'endpoints.update.url',
      /^\{\{match.key\}\} \(at 1:\d+\): match is never set here \(only fetch is sent with a match\)/],
    ['a name used in a block whose condition tests another', '"/crm/update/{{leadId}}"', '"/crm/update/{{leadId}}{{#if contact.email}}{{match.value}}{{/if}}"', 'endpoints.update.url',
      /match is never set here/],
    ['a misspelt name in the else of #each, which runs in the outer context', '"/crm/update/{{leadId}}"', '"/crm/update/{{leadId}}{{#each contact.tags}}x{{else}}{{contact.emial}}{{/each}}"', 'endpoints.update.url',
      /contact has no "emial"/],
    ['a helper that needs an argument, called without one', '"/crm/update/{{leadId}}"', '"/crm/update/{{leadId}}{{lookup}}"', 'endpoints.update.url',
      /^lookup \(at 1:\d+\): the lookup helper needs an argument/],
    ['match in a fetch without a match chain', 'url: /crm/fetch,', 'url: "/crm/fetch/{{match.key}}",', 'endpoints.fetch.url',
      /match is never set here \(the mapping has no match chain/],
    ['a secret the mapping does not declare', '"/crm/update/{{leadId}}"', '"/crm/update/{{leadId}}/{{secrets.webhook}}"', 'endpoints.update.url',
      /^\{\{secrets.webhook\}\} \(at 1:\d+\): secrets has no "webhook"; it has none \(declare it under the mapping's secrets:, as env:NAME or file:PATH\)/],
  ])('refuses %s', (_label, find, replace, field, message) => {
    expect(templateError(find, replace)).toEqual([{ field, message: expect.stringMatching(message) }]);
  });

  it.each([
    ['attributes and payload, which hold whatever the contact and the mapping put there', '"/crm/update/{{leadId}}/{{contact.attributes.utm_source}}/{{payload.phone}}"'],
    ['paths inside #each and #with, which start elsewhere', '"/crm/update/{{leadId}}{{#each contact.tags}}/{{this}}{{@index}}{{/each}}{{#with contact}}{{phone}}{{/with}}"'],
    ['a guarded name in #if, and the helpers', '"/crm/update/{{leadId}}{{#if match}}{{match.key}}{{/if}}/{{backslashEscape (lookup contact \'name\')}}"'],
    ['#with and #unless testing a name never set here', '"/crm/update/{{leadId}}{{#with match}}{{key}}{{/with}}{{#unless match}}-{{else}}{{match.value}}{{/unless}}"'],
  ])('accepts %s', (_label, url) => {
    expect(compileMapping(seedWith('"/crm/update/{{leadId}}"', url), { file: 'ok.yaml' }).endpoints.update).toBeDefined();
  });

  it('reports every mistake of a mapping at once, and a shared reader\'s once', () => {
    const text = seedWith('"/crm/update/{{leadId}}"', '"/crm/update/{{lead_id}}"').replace('email: "{{contact.email}}"', 'email: "{{contact.emial}}"')
      .replace('"name": contact.name,', '"name": $upper(contact.name),').replace('leadId: body.lead_id', 'leadId: body.lead_id[[');
    expect(compileBad(text).errors.map((e) => e.field)).toEqual(['payload', 'endpoints.fetch.query.email', 'responses.leadId', 'endpoints.update.url']);
  });

  it('refuses a call of a JSONata function that does not exist, with the nearest name', () => {
    const err = compileBad(seedWith('"phone": contact.phone,', '"phone": $nationalNum(contact.phone),'));
    expect(err.code).toBe('ERR_MAPPING_EXPRESSION');
    expect(err.errors).toEqual([{ field: 'payload', message: expect.stringMatching(/^\$nationalNum at position \d+: no function of that name; did you mean \$nationalNumber\? \(line 12\)$/) }]);
    expect(compileBad(seedWith('"name": contact.name,', '"name": contact.name ~> $uppercas,')).errors[0]!.message).toContain('did you mean $uppercase?');
  });

  it('accepts JSONata\'s functions, ours, and functions the expression binds itself', () => {
    const source = '($pick := function($v) { $v }; contact.tags@$t#$i.{ "t": $pick($t) ~> $uppercase, "i": $i, "e": $e164(contact.phone), "n": $now() })';
    expect(() => compileExpression(source, 'payload')).not.toThrow();
  });

  it('knows every function of the pinned jsonata', () => {
    const { JSONATA_FUNCTIONS } = jest.requireActual('../mapping/expressions') as { JSONATA_FUNCTIONS: string[] };
    const source = readFileSync(require.resolve('jsonata'), 'utf8');
    const bound = [...source.matchAll(/\b(?:staticFrame|environment)\.bind\('([A-Za-z0-9]+)'/g)].map((m) => m[1]);
    expect(bound.length).toBeGreaterThan(60);
    expect([...JSONATA_FUNCTIONS].sort()).toEqual([...new Set(bound)].sort());
  });
});

describe('the compile cache', () => {
  it('compiles a text once per file: a hit by content hash', () => {
    const a = compileMapping(seed, { file: 'cache.yaml' });
    expect(compileMapping(seed, { file: 'cache.yaml' })).toBe(a);
    expect(a.hash).toMatch(/^[0-9a-f]{64}$/);
  });

  it('compiles a changed text anew, and keeps error file names right', () => {
    const a = compileMapping(seed, { file: 'cache.yaml' });
    const changed = compileMapping(`${seed}\n# a comment changes the hash\n`, { file: 'cache.yaml' });
    expect(changed).not.toBe(a);
    expect(changed.hash).not.toBe(a.hash);
    expect(compileMapping(seed, { file: 'other.yaml' }).file).toBe('other.yaml');
  });
});
