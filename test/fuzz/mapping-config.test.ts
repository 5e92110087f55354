/**
 * Mapping files and config files, mutated from the shipped ones: each either compiles / loads, or fails with a
 * MappingError / config error that names a field, never with an unclassified exception.
 */
import { mkdtempSync, readdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import fc from 'fast-check';
import { parse as parseYaml, stringify as toYaml } from 'yaml';
import { compileMapping, ConfigError, MappingError } from '@crm-sync/core';
import { loadConfigFile, registerBuiltinAdapters, resolveConfig } from '@crm-sync/runner';
import { editText, mutate, mutations, params, textEdit } from './support';

registerBuiltinAdapters();
const MAPPINGS_DIR = resolve(__dirname, '../../mappings');
const shipped = readdirSync(MAPPINGS_DIR).filter((f) => /\.(ya?ml|json)$/.test(f)).map((f) => ({ file: f, text: readFileSync(join(MAPPINGS_DIR, f), 'utf8') }));

/** A classified failure that names where: MappingError with field paths, or ConfigError (whose message names it). */
function expectClassified(err: unknown): void {
  if (err instanceof MappingError) {
    expect(err.errors.length).toBeGreaterThan(0);
    for (const e of err.errors) expect(e.field).toEqual(expect.any(String));
    expect(err.code).toMatch(/^ERR_[A-Z_]+$/);
    return;
  }
  if (err instanceof ConfigError) return void expect(err.code).toMatch(/^ERR_[A-Z_]+$/);
  throw new Error(`unclassified ${(err as Error)?.constructor?.name}: ${(err as Error)?.message ?? String(err)}`);
}

function compileOrClassify(text: string): void {
  try {
    compileMapping(text, { file: 'fuzzed.yaml' });
  } catch (err) {
    expectClassified(err);
  }
}

describe('mapping files', () => {
  it('structural mutations of every shipped mapping (as YAML and as JSON)', () => {
    const docs = shipped.map((s) => parseYaml(s.text) as unknown);
    fc.assert(fc.property(fc.nat(), mutations, fc.boolean(), (which, edits, asJson) => {
      const doc = mutate(docs[which % docs.length], edits);
      compileOrClassify(asJson ? JSON.stringify(doc) ?? 'null' : toYaml(doc));
    }), params(250));
  });

  it('text edits of every shipped mapping', () => {
    fc.assert(fc.property(fc.nat(), fc.array(textEdit, { minLength: 1, maxLength: 3 }), (which, edits) => {
      compileOrClassify(edits.reduce((t, e) => editText(t, e), shipped[which % shipped.length]!.text));
    }), params(250));
  });

  it('found by fuzzing: an alias without its anchor, and an alias bomb, are syntax errors', () => {
    const laughs = ['a: &a ["lol","lol","lol","lol","lol","lol","lol","lol","lol"]', ...'bcdefgh'.split('').map((k, i) => `${k}: &${k} [${Array(9).fill(`*${'abcdefg'[i]}`).join(',')}]`)].join('\n');
    for (const text of ['name: x\nbaseUrl: *nowhere', laughs]) {
      expect(() => compileMapping(text, { file: 'bad.yaml' })).toThrow(expect.objectContaining({ code: 'ERR_MAPPING_SYNTAX', errors: [expect.objectContaining({ field: '(document)' })] }));
    }
  });

  it('arbitrary text', () => {
    fc.assert(fc.property(fc.string({ maxLength: 200 }), (text) => compileOrClassify(text)), params(200));
  });
});

describe('config files', () => {
  const dir = mkdtempSync(join(tmpdir(), 'crm-sync-fuzz-config-'));
  afterAll(() => rmSync(dir, { recursive: true, force: true }));
  process.env.FUZZ_INGEST_TOKEN = 'fuzz-token';
  const VALID = {
    listen: '127.0.0.1:8080', dataDir: './data', store: 'sqlite:./data/crm-sync.db', ingestToken: 'env:FUZZ_INGEST_TOKEN', maxBodyBytes: 5242880,
    clientRequestsPerSecond: 100, drain: '10s', lease: '2m', logLevel: 'info', allowHosts: ['127.0.0.1'], plugins: [],
    retry: { base: '10s', max: '1h', budget: '24h' },
    tenants: { acme: { mapping: join(MAPPINGS_DIR, 'seed-contract.yaml'), baseUrl: 'https://crm.acme.example', quiet: '5m', maxWait: '1h', concurrency: 4, requestsPerSecond: 10, defaultCountry: 'IN' } },
  };

  it('the unmutated config is valid (so the mutations below start from a good file)', () => {
    expect(resolveConfig(VALID, { name: 'fuzz', baseDir: dir, labels: {} }, {}).tenants).toHaveLength(1);
  });

  it('structural mutations → a config, or a ConfigError naming the field', () => {
    fc.assert(fc.property(mutations, (edits) => {
      try {
        resolveConfig(mutate(VALID, edits), { name: 'fuzz', baseDir: dir, labels: {} }, {});
      } catch (err) {
        expect(err).toBeInstanceOf(ConfigError);
        expect((err as Error).message).toMatch(/^fuzz: |^[a-zA-Z]/);
      }
    }), params(400));
  });

  it('text edits of the YAML file → loads, or a ConfigError', () => {
    const text = toYaml(VALID);
    const file = join(dir, 'crm-sync.yaml');
    fc.assert(fc.property(fc.array(textEdit, { minLength: 1, maxLength: 3 }), (edits) => {
      writeFileSync(file, edits.reduce((t, e) => editText(t, e), text));
      try {
        loadConfigFile(file, {});
      } catch (err) {
        expect(err).toBeInstanceOf(ConfigError);
      }
    }), params(300));
  });
});
