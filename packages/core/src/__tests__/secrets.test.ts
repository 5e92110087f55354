import fs, { mkdtempSync, renameSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { ConfigError, maskSecrets, resolveSecretRef } from '../index';

const SECRET = 'k3y+/=&ü"x';

describe('maskSecrets', () => {
  it('masks every spelling a request may carry: raw, percent-encoded, form-encoded, JSON-escaped', () => {
    const spellings = [SECRET, encodeURIComponent(SECRET), new URLSearchParams({ s: SECRET }).toString().slice(2), JSON.stringify(SECRET).slice(1, -1)];
    const text = spellings.map((s, i) => `${i}:${s}`).join(' ');
    const masked = maskSecrets(text, [SECRET]);
    expect(masked).toBe('0:*** 1:*** 2:*** 3:***');
  });

  it('masks every occurrence of several secrets and ignores empty ones', () => {
    expect(maskSecrets('a-b-a', ['a', '', 'b'])).toBe('***-***-***');
    expect(maskSecrets('nothing here', [''])).toBe('nothing here');
  });
});

describe('resolveSecretRef', () => {
  it('reads env: and file: references', () => {
    process.env.CRM_SYNC_TEST_SECRET = 'from-env';
    expect(resolveSecretRef('env:CRM_SYNC_TEST_SECRET')).toBe('from-env');
    const file = join(mkdtempSync(join(tmpdir(), 'crm-sync-secret-')), 'key');
    writeFileSync(file, 'from-file\n');
    expect(resolveSecretRef(`file:${file}`)).toBe('from-file');
  });

  it('names the reference, never a value, when it cannot resolve', () => {
    delete process.env.CRM_SYNC_TEST_UNSET;
    expect(() => resolveSecretRef('env:CRM_SYNC_TEST_UNSET')).toThrow(new ConfigError('secret env:CRM_SYNC_TEST_UNSET: environment variable CRM_SYNC_TEST_UNSET is not set'));
    expect(() => resolveSecretRef('file:/nonexistent/key')).toThrow(expect.objectContaining({ code: 'ERR_SECRET_MISSING' }));
    expect(() => resolveSecretRef('literal')).toThrow(expect.objectContaining({ code: 'ERR_SECRET_REF' }));
  });

  describe('file: secrets', () => {
    const dir = () => mkdtempSync(join(tmpdir(), 'crm-sync-secret-'));
    afterEach(() => jest.restoreAllMocks());

    it('reads the file again only once it changed, so a rotated secret counts at the next sync', () => {
      const file = join(dir(), 'key');
      writeFileSync(file, 'first-key\n');
      const reads = jest.spyOn(fs, 'readFileSync');
      expect(resolveSecretRef(`file:${file}`)).toBe('first-key');
      expect(resolveSecretRef(`file:${file}`)).toBe('first-key');
      expect(reads).toHaveBeenCalledTimes(1);
      // Rewritten in place with a secret of the same length.
      writeFileSync(file, 'other-key\n');
      expect(resolveSecretRef(`file:${file}`)).toBe('other-key');
      expect(reads).toHaveBeenCalledTimes(2);
    });

    it('follows an atomic replace (rename over the file, as secret mounts rotate)', () => {
      const d = dir();
      const file = join(d, 'key');
      writeFileSync(file, 'old-key');
      expect(resolveSecretRef(`file:${file}`)).toBe('old-key');
      writeFileSync(join(d, 'key.new'), 'new-key');
      renameSync(join(d, 'key.new'), file);
      expect(resolveSecretRef(`file:${file}`)).toBe('new-key');
    });

    it('fails once the file is gone or empty, and reads it again when it is back', () => {
      const file = join(dir(), 'key');
      writeFileSync(file, 'a-key');
      expect(resolveSecretRef(`file:${file}`)).toBe('a-key');
      rmSync(file);
      expect(() => resolveSecretRef(`file:${file}`)).toThrow(new ConfigError(`secret file:${file}: cannot read the file (ENOENT)`));
      writeFileSync(file, '  \n');
      expect(() => resolveSecretRef(`file:${file}`)).toThrow(new ConfigError(`secret file:${file}: the file is empty`));
      writeFileSync(file, 'a-key');
      expect(resolveSecretRef(`file:${file}`)).toBe('a-key');
    });
  });
});
