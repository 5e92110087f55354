import { mkdtempSync, writeFileSync } from 'node:fs';
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
    ['a missing required field', /^baseUrl:.*\n/m, '', { field: 'baseUrl', message: 'is required' }],
    ['a wrong type', 'timeoutMs: 10000', 'timeoutMs: fast', { field: 'timeoutMs', message: expect.stringContaining('must be integer') }],
    ['a literal secret', '"env:SEED_CRM_AUTH_KEY"', 'hunter2', { field: 'auth.secret', message: expect.stringContaining('must match pattern') }],
    ['a missing endpoint the flow needs', /^ {2}create:.*\n/m, '', { field: 'endpoints.create', message: 'is required by the fetch-create-update flow' }],
    ['a bad auth option', 'header: Auth-Key,', 'header: "Auth Key",', { field: 'auth.header', message: expect.stringContaining('must match pattern') }],
    ['an unknown flow adapter', 'flow: fetch-create-update', 'flow: carrier-pigeon', { field: 'flow', message: 'no flow adapter named "carrier-pigeon" is registered' }],
  ])('names the file, the path and the expectation for %s', (_label, find, replace, expected) => {
    const err = compileBad(seedWith(find, replace));
    expect(err.file).toBe('mappings/acme.yaml');
    expect(err.errors).toEqual([expected]);
    expect(err.message).toMatch(new RegExp(`^mappings/acme\\.yaml: ${expected.field.replace(/\./g, '\\.')}: `));
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

  it('names the template path of a Handlebars syntax error', () => {
    const err = compileBad(seedWith('"/crm/update/{{leadId}}"', '"/crm/update/{{leadId"'));
    expect(err.code).toBe('ERR_MAPPING_TEMPLATE');
    expect(err.errors).toEqual([{ field: 'endpoints.update.url', message: expect.stringContaining('Handlebars syntax error: Parse error on line 1') }]);
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
